"""The sending commands, run as a user runs them (`python -m newsletter …`)."""

from __future__ import annotations

import mailbox
import subprocess
import sys
from datetime import timedelta

import pytest
from dispatch_kit import WEEK, wait_until

from newsletter import dispatch
from newsletter.models import EditionStatus, utcnow

embedded = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@embedded
def test_send_wait_and_status(cli, runtime, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: `send --wait` delivers into the outbox and `status` reports the counts."""
    readers(6)
    sent = cli("send", "--week", WEEK, "--wait")
    assert sent.returncode == 0, sent.stderr
    assert "6 deliveries planned" in sent.stdout
    assert len(mailbox.Maildir(runtime.settings.outbox, create=False)) == 6
    status = cli("status", "--week", WEEK)
    assert "sent — queued 0, sending 0, sent 6, failed 0, skipped 0 (total 6)" in status.stdout


@embedded
def test_send_plans_a_long_list_in_chunks(cli, runtime, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: with chunks smaller than the list, `send` says so, and every reader still
    gets one email."""
    readers(7)
    sent = cli(
        "send", "--week", WEEK, env={"NEWSLETTER_BATCH_SIZE": "3", "NEWSLETTER_PLAN_CHUNK": "2"}
    )
    assert sent.returncode == 0, sent.stderr
    assert (
        "3 deliveries planned (3 new), 1 batch(es) queued; the rest of the list is planned"
        in sent.stdout
    )
    assert "sent — queued 0, sending 0, sent 7, failed 0, skipped 0 (total 7)" in sent.stdout
    assert len(mailbox.Maildir(runtime.settings.outbox, create=False)) == 7


@embedded
def test_refusals_are_one_line(cli, edition) -> None:  # type: ignore[no-untyped-def]
    """Scenario: wrong moves and missing things print one `error:` line, exit 1, no traceback."""
    cases = [
        (("pause", "--week", WEEK), "error: edition 2020-W05 is draft: it cannot become paused"),
        (("send", "--week", WEEK, "--at", "next monday"), "--at wants ISO 8601"),
        (("worker",), "needs a broker: set NEWSLETTER_BROKER_URL"),
    ]
    for args, expected in cases:
        result = cli(*args)
        assert result.returncode == 1, args
        assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_at_is_local_and_never_past() -> None:
    """Scenario: --at without an offset is read in the configured zone; the past is refused."""
    from zoneinfo import ZoneInfo

    from newsletter.cli.sending import parse_at
    from newsletter.errors import ValidationError

    minsk = ZoneInfo("Europe/Minsk")
    assert parse_at("2031-02-03T09:00", minsk).utcoffset() == timedelta(hours=3)
    assert parse_at("2031-02-03T09:00+00:00", minsk).utcoffset() == timedelta(0)
    with pytest.raises(ValidationError, match="in the past"):
        parse_at("2001-01-01T09:00", minsk)


@embedded
def test_schedule_and_cancel(cli, runtime, edition) -> None:  # type: ignore[no-untyped-def]
    """Scenario: `--at` without an offset is Minsk time; a cancelled schedule never fires."""
    scheduled = cli("send", "--week", WEEK, "--at", "2031-02-03T09:00")
    assert scheduled.returncode == 0, scheduled.stderr
    assert "scheduled for 2031-02-03 09:00 +03" in scheduled.stdout
    with runtime.session() as session:
        assert dispatch.progress(session, WEEK).status is EditionStatus.scheduled
    assert cli("cancel", "--week", WEEK).returncode == 0
    with runtime.session() as session:
        assert dispatch.progress(session, WEEK).status is EditionStatus.cancelled


@embedded
def test_beat_without_broker_sends_when_due(
    runtime, edition, readers, env_for, tmp_path, recording_jobs
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: with no broker, `newsletter beat` ticks in-process and sends a due edition."""
    readers(4)
    with runtime.session() as session:
        at = utcnow() + timedelta(seconds=2)
        dispatch.start_send(session, runtime.settings, WEEK, at=at, jobs=recording_jobs)
    beat = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "beat", "--interval", "0.5"],
        env=env_for(runtime.settings),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def sent() -> bool:
            with runtime.session() as session:
                return dispatch.progress(session, WEEK).status is EditionStatus.sent

        wait_until(sent, timeout=60, every=0.25)
    finally:
        beat.terminate()
        output = beat.communicate(timeout=10)[0].decode()
    assert "ticking in-process" in output
    assert len(mailbox.Maildir(runtime.settings.outbox, create=False)) == 4

"""Failures that are not the readers' pause the edition with a reason and mark nobody
failed; `retry` and the staff button queue failed deliveries again."""

from __future__ import annotations

import mailbox
import time
from collections import Counter
from dataclasses import replace

import pytest
from dispatch_kit import WEEK, RecordingJobs, SlowHandler, free_port

from newsletter import dispatch
from newsletter.models import EditionStatus
from newsletter.runtime import Runtime

embedded = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _progress(runtime: Runtime) -> dispatch.Progress:
    with runtime.session() as session:
        return dispatch.progress(session, WEEK)


def _start(runtime: Runtime, jobs: RecordingJobs) -> None:
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=jobs)


def _outbox_copies(runtime: Runtime) -> Counter[str]:
    box = mailbox.Maildir(runtime.settings.outbox, create=False)
    return Counter(m["Delivered-To"] for m in box)


@embedded
def test_unusable_outbox_pauses_the_send_and_wait_exits_non_zero(
    cli, runtime, edition, readers
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the outbox folder's name is taken by a file: `send --wait` exits 1 with one
    line saying the edition is paused and why, `status` says the same, nobody is failed;
    once the folder is usable, `resume` delivers one copy to each reader."""
    readers(4)
    outbox = runtime.settings.outbox
    outbox.parent.mkdir(parents=True, exist_ok=True)
    outbox.write_text("not a folder")
    sent = cli("send", "--week", WEEK, "--wait")
    assert sent.returncode == 1, sent.stdout
    assert "Traceback" not in sent.stderr
    [line] = [x for x in sent.stderr.splitlines() if x.startswith("error:")]
    assert "2020-W05 is paused" in line and "unusable" in line and "[Errno" in line
    status = cli("status", "--week", WEEK)
    assert "paused — queued 4, sending 0, sent 0, failed 0" in status.stdout
    assert "unusable" in status.stdout
    outbox.unlink()
    resumed = cli("resume", "--week", WEEK)
    assert resumed.returncode == 0, resumed.stderr
    assert _outbox_copies(runtime) == {f"reader{i}@example.org": 1 for i in range(4)}
    p = _progress(runtime)
    assert (p.status, p.sent, p.failed, p.reason) == (EditionStatus.sent, 4, 0, None)


def test_relay_refusing_our_credentials_pauses_the_send(
    settings, engine, smtp_server, edition, readers
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the SMTP URL has a user but the relay offers no AUTH: the edition pauses
    saying the relay refused us; every delivery stays queued, none failed, nothing sent."""
    url, handler = smtp_server
    with_user = url.replace("smtp://", "smtp://mailer:secret@")
    runtime = Runtime(replace(settings, smtp_url=with_user), _engine=engine)
    readers(5)
    jobs = RecordingJobs()
    _start(runtime, jobs)
    jobs.run(runtime)
    p = _progress(runtime)
    assert (p.status, p.queued, p.failed, p.sent) == (EditionStatus.paused, 5, 0, 0)
    assert p.reason and "refused us" in p.reason and "AUTH" in p.reason
    assert handler.messages == []


def test_relay_down_past_the_retries_pauses_then_resume_sends_once(
    settings, engine, edition, readers
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: nobody listens on the relay's port through every attempt: the edition pauses
    ("unreachable after 2 attempts"), nobody is failed; the relay comes up, staff resume, and
    each reader gets exactly one copy."""
    from aiosmtpd.controller import Controller

    port = free_port()
    url = f"smtp://127.0.0.1:{port}?timeout=2"
    runtime = Runtime(
        replace(settings, smtp_url=url, max_attempts=2, retry_backoff=0.05), _engine=engine
    )
    readers(6)
    jobs = RecordingJobs()
    _start(runtime, jobs)
    deadline = time.monotonic() + 30
    while _progress(runtime).status is EditionStatus.sending:
        assert time.monotonic() < deadline
        jobs.run(runtime)
        time.sleep(0.1)
        with runtime.session() as session:
            dispatch.tick(session, runtime.settings, jobs, idle_after=0)
    p = _progress(runtime)
    assert (p.status, p.queued, p.failed) == (EditionStatus.paused, 6, 0)
    assert p.reason and "unreachable after 2 attempts" in p.reason
    handler = SlowHandler(0.0)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with runtime.session() as session:
            dispatch.resume(session, WEEK, settings=runtime.settings, jobs=jobs)
        jobs.run(runtime)
    finally:
        controller.stop()
    assert handler.copies() == {f"reader{i}@example.org": 1 for i in range(6)}
    assert _progress(runtime).status is EditionStatus.sent


@embedded
def test_retry_queues_failed_deliveries_again(cli, runtime, smtp_server, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a mailbox is full through the only attempt, so its delivery fails; once it
    has room, `newsletter retry` sends it that one copy and nobody else gets a second."""
    url, handler = smtp_server
    readers(4)
    handler.fail_with["reader1@example.org"] = "452 4.2.2 mailbox full"
    env = {"NEWSLETTER_SMTP_URL": url, "NEWSLETTER_MAX_ATTEMPTS": "1"}
    sent = cli("send", "--week", WEEK, "--wait", env=env)
    assert sent.returncode == 0, sent.stderr
    assert "sent 3, failed 1" in sent.stdout
    handler.fail_with.clear()
    retried = cli("retry", "--week", WEEK, env=env)
    assert retried.returncode == 0, retried.stderr
    assert "2020-W05: 1 failed deliveries queued again" in retried.stdout
    copies = {rcpt: len(c) for rcpt, c in handler.by_recipient().items()}
    assert copies == {f"reader{i}@example.org": 1 for i in range(4)}
    status = cli("status", "--week", WEEK, env=env)
    assert "sent — queued 0, sending 0, sent 4, failed 0" in status.stdout


@embedded
def test_retry_refuses_a_draft_in_one_line(cli, edition) -> None:  # type: ignore[no-untyped-def]
    """Scenario: `retry` on an edition never sent, or an unknown week: one line, exit 1."""
    for week, expected in (
        (WEEK, "only a sending, paused or sent edition"),
        ("2031-W01", "no edition"),
    ):
        result = cli("retry", "--week", week)
        assert result.returncode == 1 and expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr

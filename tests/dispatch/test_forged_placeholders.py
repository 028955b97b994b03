"""Text shaped like the template's placeholders, in an article, a subject, a topic name or a
reader's name, is shown literally in every part of every message: send, test send, preview."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from forgery_kit import NAME, WEEK, check_message, write_forged_edition
from sqlalchemy import select

from newsletter import dispatch
from newsletter.dispatch.testsend import send_test
from newsletter.editions import import_edition_file
from newsletter.languages import LANGUAGE_SETS, format_languages
from newsletter.messages import preview_message
from newsletter.models import Edition, EditionStatus, Subscriber, SubscriberStatus
from newsletter.runtime import Runtime
from newsletter.transport import make_transport


def _forged(runtime: Runtime, tmp_path: Path) -> None:
    with runtime.session() as session:
        import_edition_file(session, write_forged_edition(tmp_path))


def test_a_send_shows_forged_placeholders_literally(
    settings, engine, smtp_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the edition and the readers' names are full of placeholder-shaped text; the
    send finishes, and every reader's message shows that text as it was typed."""
    url, handler = smtp_server
    runtime = Runtime(replace(settings, smtp_url=url), _engine=engine)
    _forged(runtime, tmp_path)
    with runtime.session() as session:
        for i, langs in enumerate(LANGUAGE_SETS):
            session.add(
                Subscriber(
                    email=f"reader{i}@example.org",
                    name=NAME,
                    languages=format_languages(langs),
                    status=SubscriberStatus.active,
                )
            )
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=runtime.jobs)
    deadline = time.monotonic() + 60
    while True:
        with runtime.session() as session:
            dispatch.tick(session, runtime.settings, runtime.jobs, idle_after=0)
            status = session.scalar(select(Edition.status).where(Edition.week == WEEK))
        if status is not EditionStatus.sending or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status is EditionStatus.sent
    received = handler.by_recipient()
    assert len(received) == len(LANGUAGE_SETS)
    for address, copies in received.items():
        assert len(copies) == 1
        check_message(copies[0], address)


def test_test_send_and_preview_show_forged_placeholders_literally(
    runtime: Runtime, settings, smtp_server, tmp_path: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: staff preview the forged edition (function and CLI) and send a test copy of
    each language set: no KeyError, no traceback, the text shown as typed."""
    url, handler = smtp_server
    _forged(runtime, tmp_path)
    with runtime.session() as session:
        edition = session.scalars(select(Edition).where(Edition.week == WEEK)).one()
        for langs in (("be",), ("ru", "en"), ("en", "be", "ru")):
            raw = preview_message(session, settings, edition, langs)
            check_message(raw, "reader@example.org", name=False)
        sets = send_test(
            session,
            settings,
            WEEK,
            "staff@example.org",
            make_transport(replace(settings, smtp_url=url)),
            language_sets=[("be", "en"), ("ru",)],
        )
    assert sets == [("be", "en"), ("ru",)]
    copies = handler.by_recipient()["staff@example.org"]
    assert len(copies) == 2
    for raw in copies:
        check_message(raw, "staff@example.org", name=False, test_copy=True)

    out = tmp_path / "preview.eml"
    result = cli("preview", "--week", WEEK, "--lang", "ru,en", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    check_message(out.read_bytes(), "reader@example.org", name=False)

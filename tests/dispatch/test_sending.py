"""Sending in-process over real SMTP (aiosmtpd) and into the Maildir outbox."""

from __future__ import annotations

import mailbox
import time
from dataclasses import replace
from email import message_from_bytes

import pytest
from dispatch_kit import WEEK, active_languages, free_port
from sqlalchemy import select

from newsletter import dispatch
from newsletter.errors import IllegalTransition
from newsletter.message_ids import read_message_id
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    EventSource,
    Subscriber,
    SubscriberStatus,
)
from newsletter.runtime import Runtime


@pytest.fixture(params=[1, 3], ids=["1 connection", "3 connections"])
def smtp_runtime(request, settings, engine, smtp_server):  # type: ignore[no-untyped-def]
    """A runtime sending to the recording relay over one connection, or over three served
    in turn (NEWSLETTER_SMTP_CONNECTIONS): the outcomes must not tell them apart."""
    url, handler = smtp_server
    settings = replace(settings, smtp_url=url, smtp_connections=request.param)
    return Runtime(settings, _engine=engine), handler


def _send(runtime: Runtime, jobs=None):  # type: ignore[no-untyped-def]
    with runtime.session() as session:
        return dispatch.start_send(session, runtime.settings, WEEK, jobs=jobs or runtime.jobs)


def _finish(runtime: Runtime, timeout: float = 30) -> dispatch.Progress:
    """What beat does, at test speed: tick until the edition is no longer sending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with runtime.session() as session:
            dispatch.tick(session, runtime.settings, runtime.jobs, idle_after=0)
        with runtime.session() as session:
            p = dispatch.progress(session, WEEK)
        if p.status is not EditionStatus.sending:
            return p
        time.sleep(0.2)
    raise AssertionError(f"still sending: {p}")


def test_full_send_reaches_every_active_reader_once(smtp_runtime, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: every active reader gets one email in their languages; nobody else gets one."""
    runtime, handler = smtp_runtime
    readers(45)  # three readers per ordered language set
    readers(2, status=SubscriberStatus.pending, prefix="pending")
    readers(2, status=SubscriberStatus.unsubscribed, prefix="gone")
    readers(1, status=SubscriberStatus.bounced, prefix="bounced")
    _send(runtime)
    with runtime.session() as session:
        expected = active_languages(session)
        done = session.scalar(select(Edition).where(Edition.week == WEEK))
        stored = set(session.scalars(select(Delivery.message_id)))
        emails = dict(session.execute(select(Subscriber.email, Subscriber.id)).all())
    received = handler.by_recipient()
    assert sorted(received) == sorted(expected)
    for email, copies in received.items():
        assert len(copies) == 1, email
        message = message_from_bytes(copies[0])
        assert message["Content-Language"] == expected[email].replace(",", ", ")
        assert message["List-Unsubscribe"].startswith("<https://news.example.org/unsubscribe/")
    # Each Message-ID is a token naming its reader and this edition; none is stored.
    assert stored == {None}
    for e in expected:
        message_id = message_from_bytes(received[e][0])["Message-ID"]
        token = read_message_id(runtime.sender.signer, message_id)
        assert token is not None and (token.subscriber_id, token.edition_id) == (emails[e], done.id)
    assert (done.status, done.sent_count, done.failed_count) == (EditionStatus.sent, 45, 0)
    with pytest.raises(IllegalTransition), runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=runtime.jobs)
    assert sum(map(len, handler.by_recipient().values())) == 45


def test_refused_recipient_fails_and_bounces(smtp_runtime, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a 550 fails that delivery and bounces the reader; the others go out."""
    runtime, handler = smtp_runtime
    people = readers(10)
    handler.fail_with[people[3].email] = "550 5.1.1 no such user"
    _send(runtime)
    with runtime.session() as session:
        p = dispatch.progress(session, WEEK)
        bounced = session.get(Subscriber, people[3].id)
        failed = session.scalar(select(Delivery).where(Delivery.subscriber_id == people[3].id))
    assert (p.status, p.sent, p.failed) == (EditionStatus.sent, 9, 1)
    assert bounced.status is SubscriberStatus.bounced
    assert failed.status is DeliveryStatus.failed and failed.last_error.startswith("550")
    assert people[3].email not in handler.by_recipient()


def test_server_saying_try_later_then_recovering(smtp_runtime, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the server answers 421 for a while; the send finishes once it recovers."""
    runtime, handler = smtp_runtime
    readers(30)
    handler.fail_all_with = "421 4.3.0 try again later"
    _send(runtime)
    with runtime.session() as session:
        p = dispatch.progress(session, WEEK)
    assert (p.status, p.sent, p.queued) == (EditionStatus.sending, 0, 30)
    handler.fail_all_with = None
    p = _finish(runtime)
    assert (p.status, p.sent) == (EditionStatus.sent, 30)
    assert all(len(c) == 1 for c in handler.by_recipient().values())


def test_server_down_then_back(settings, engine, smtp_server, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: no SMTP server at first (connection refused); it comes back and all go out."""
    from aiosmtpd.controller import Controller

    _, handler = smtp_server
    port = free_port()
    runtime = Runtime(replace(settings, smtp_url=f"smtp://127.0.0.1:{port}"), _engine=engine)
    readers(20)
    _send(runtime)
    with runtime.session() as session:
        assert dispatch.progress(session, WEEK).queued == 20
    controller = Controller(type(handler)(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        p = _finish(runtime)
        assert (p.status, p.sent) == (EditionStatus.sent, 20)
        assert len(controller.handler.by_recipient()) == 20
    finally:
        controller.stop()


def test_unsubscribe_between_planning_and_sending(
    smtp_runtime, edition, readers, recording_jobs
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a reader who unsubscribes after planning is skipped, not mailed."""
    from newsletter.subscriptions import unsubscribe

    runtime, handler = smtp_runtime
    people = readers(8)
    _send(runtime, recording_jobs)
    with runtime.session() as session:
        unsubscribe(session, people[5].id, source=EventSource.link)
    recording_jobs.run(runtime)
    with runtime.session() as session:
        p = dispatch.progress(session, WEEK)
    assert (p.status, p.sent, p.skipped) == (EditionStatus.sent, 7, 1)
    assert people[5].email not in handler.by_recipient()


def test_pause_resume_cancel(smtp_runtime, edition, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: paused sends nothing, resumed sends again, cancelled skips the rest."""
    runtime, handler = smtp_runtime
    readers(60)
    _send(runtime, recording_jobs)  # three batches of 25, 25, 10
    recording_jobs.run(runtime, "plan")
    with runtime.session() as session:
        dispatch.pause(session, WEEK)
    recording_jobs.run(runtime)
    assert handler.messages == []
    resumed = type(recording_jobs)()
    with runtime.session() as session:
        dispatch.resume(session, WEEK, settings=runtime.settings, jobs=resumed)
    first = resumed.published[0][1]
    dispatch.send_batch(runtime.sessions, runtime.settings, runtime.transport, **first)
    with runtime.session() as session:
        assert dispatch.progress(session, WEEK).sent == 25
        dispatch.cancel(session, WEEK)
    resumed.published.pop(0)
    resumed.run(runtime)
    with runtime.session() as session:
        p = dispatch.progress(session, WEEK)
    assert (p.status, p.sent, p.skipped, p.queued) == (EditionStatus.cancelled, 25, 35, 0)
    assert len(handler.messages) == 25


def test_rate_limit(settings, engine, smtp_server, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: NEWSLETTER_RATE_LIMIT=20 makes 20 messages take about a second."""
    url, handler = smtp_server
    runtime = Runtime(replace(settings, smtp_url=url, rate_limit=20.0), _engine=engine)
    readers(21)
    started = time.monotonic()
    _send(runtime)
    assert time.monotonic() - started >= 0.95
    assert len(handler.messages) == 21


def test_maildir_outbox_send(runtime, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: with no SMTP URL the edition lands in the Maildir outbox, one per reader."""
    readers(15)
    _send(runtime)
    box = mailbox.Maildir(runtime.settings.outbox, create=False)
    recipients = sorted(m["Delivered-To"] for m in box)
    assert recipients == sorted(f"reader{i}@example.org" for i in range(15))
    assert {m["To"].split("<")[-1].rstrip(">") for m in box} == set(recipients)


def test_test_copies(smtp_runtime, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: --test-to sends one copy per language set held, and records no delivery."""
    runtime, handler = smtp_runtime
    readers(3)  # be; ru; en
    with runtime.session() as session:
        sets = dispatch.send_test(
            session, runtime.settings, WEEK, "staff@example.org", runtime.transport
        )
    assert sets == [("be",), ("en",), ("ru",)]
    copies = handler.by_recipient()["staff@example.org"]
    assert sorted(message_from_bytes(c)["Content-Language"] for c in copies) == ["be", "en", "ru"]
    with runtime.session() as session:
        p = dispatch.progress(session, WEEK)
    assert (p.status, p.total) == (EditionStatus.draft, 0)


def test_confirmation_job(smtp_runtime) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the send_confirmation job mails a working confirm link to a pending reader
    only, and once (run again, it sends nothing); a server saying "try later" is recorded
    with the time the tick tries again."""
    import re

    from newsletter.jobs import run_job
    from newsletter.models import Subscriber
    from newsletter.subscriptions import add_subscriber
    from newsletter.tokens import TokenPurpose, TokenSigner
    from newsletter.transport import Outcome

    runtime, handler = smtp_runtime
    key = runtime.settings.secret_key
    with runtime.session() as session:
        pending = add_subscriber(session, key, "new@example.org", ("ru", "en"), confirmed=False)
        active = add_subscriber(session, key, "old@example.org", ("be",), confirmed=True)
    run_job(runtime, "send_confirmation", {"subscriber_id": pending.id})
    run_job(runtime, "send_confirmation", {"subscriber_id": active.id})
    [copy] = handler.by_recipient()["new@example.org"]
    assert list(handler.by_recipient()) == ["new@example.org"]
    message = message_from_bytes(copy)
    body = b"".join(
        part.get_payload(decode=True) for part in message.walk() if not part.is_multipart()
    ).decode()
    token = re.search(r"https://news\.example\.org/confirm/([\w-]+)", body).group(1)
    assert TokenSigner(key).read(token, TokenPurpose.confirm).subscriber_id == pending.id

    assert run_job(runtime, "send_confirmation", {"subscriber_id": pending.id}) is None
    assert len(handler.by_recipient()["new@example.org"]) == 1

    with runtime.session() as session:
        later = add_subscriber(session, key, "later@example.org", ("en",), confirmed=False)
    handler.fail_all_with = "421 4.3.0 try later"
    result = run_job(runtime, "send_confirmation", {"subscriber_id": later.id})
    assert result.outcome is Outcome.temporary
    with runtime.session() as session:
        row = session.get(Subscriber, later.id)
        assert row.confirm_attempts == 1 and "421" in row.confirm_error
        assert row.confirm_due_at is not None  # the tick tries again then


def test_edition_made_incomplete_mid_send_is_held(
    smtp_runtime, edition, readers, recording_jobs
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a translation deleted after planning pauses the send with the reason as soon
    as a reader needs it; nobody gets a broken email (readers of other languages may get
    theirs first), and resuming with a fallback language finishes it."""
    from newsletter.models import ArticleTranslation

    runtime, handler = smtp_runtime
    readers(5)
    _send(runtime, recording_jobs)
    with runtime.session() as session:
        missing = session.scalars(select(ArticleTranslation).where(ArticleTranslation.lang == "ru"))
        session.delete(next(iter(missing)))
    recording_jobs.run(runtime)
    with runtime.session() as session:
        held = session.scalar(select(Edition).where(Edition.week == WEEK))
        assert held.status is EditionStatus.paused and "ru" in held.waiting_reason
        held.fallback_language = "en"
        languages = active_languages(session)
        queued = dispatch.progress(session, WEEK).queued
    got = handler.by_recipient()
    assert len(got) + queued == 5 and queued >= 1
    assert not [email for email in got if "ru" in languages[email].split(",")]
    with runtime.session() as session:
        dispatch.resume(session, WEEK, settings=runtime.settings, jobs=runtime.jobs)
    with runtime.session() as session:
        assert dispatch.progress(session, WEEK).sent == 5


def test_stretches_send_what_is_ready_first() -> None:
    """Scenario: a fresh worker cuts its first claim at each language set it has not rendered
    yet; once all are ready, stretches are as long as the flush interval."""
    from newsletter.dispatch.sending import _stretches
    from newsletter.dispatch.store import Claim

    sets = ["be"] * 3 + ["be,en"] * 2 + ["ru"] * 4
    claims = [Claim(i, i, 1, f"r{i}@example.org", None, s, True, 1) for i, s in enumerate(sets)]

    def cut(step: int, ready: set[str]) -> list[list[str]]:
        return [
            [c.languages for c in chunk]
            for _, chunk in _stretches(claims, step, ready.__contains__)
        ]

    assert cut(50, set()) == [["be"] * 3, ["be,en"] * 2, ["ru"] * 4]
    assert cut(50, {"be,en"}) == [["be"] * 3 + ["be,en"] * 2, ["ru"] * 4]
    assert cut(4, {"be", "be,en", "ru"}) == [sets[0:4], sets[4:8], sets[8:]]
    assert [start for start, _ in _stretches(claims, 4, lambda _: True)] == [0, 4, 8]

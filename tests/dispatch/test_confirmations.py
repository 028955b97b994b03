"""Nothing is lost quietly: a confirmation that could not leave is retried by the tick with
back-off until it leaves or its link expires, and staff see the late ones."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from dispatch_kit import RecordingJobs, SlowHandler, free_port, pg_only

from newsletter import dispatch
from newsletter.jobs import JOBS, run_job
from newsletter.models import Subscriber, utcnow
from newsletter.runtime import Runtime
from newsletter.subscriptions import add_subscriber


def _tick(runtime: Runtime, jobs: RecordingJobs, at):  # type: ignore[no-untyped-def]
    with runtime.session() as session:
        return dispatch.tick(session, runtime.settings, jobs, now=at)


def _late(runtime: Runtime, at):  # type: ignore[no-untyped-def]
    with runtime.session() as session:
        return dispatch.late_confirmations(session, runtime.settings, now=at)


def test_smtp_down_at_subscription_then_back(settings, engine) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the relay is down when a reader subscribes: the confirmation is recorded as
    not sent, listed as late, retried by the tick when due (not before), and once the relay
    is back the reader gets exactly one confirmation; nothing more is queued afterwards."""
    port = free_port()
    runtime = Runtime(
        replace(settings, smtp_url=f"smtp://127.0.0.1:{port}?timeout=2"), _engine=engine
    )
    with runtime.session() as session:
        reader = add_subscriber(session, settings.secret_key, "new@example.org", ("be",))
    result = run_job(runtime, "send_confirmation", {"subscriber_id": reader.id})
    assert result is not None and result.blocked  # relay down: not the reader's fault
    now = utcnow()
    [late] = _late(runtime, now + timedelta(seconds=settings.stale_after + 1))
    assert late.email == "new@example.org" and late.attempts == 1 and late.next_try is not None
    assert "Connection refused" in (late.error or "")
    jobs = RecordingJobs()
    assert _tick(runtime, jobs, now + timedelta(seconds=5)).confirmations == 0  # not due yet
    handler = SlowHandler(0.0)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        due = now + timedelta(seconds=31)
        assert _tick(runtime, jobs, due).confirmations == 1
        assert _tick(runtime, jobs, due).confirmations == 0  # leased: not queued twice
        assert jobs.run(runtime) == ["send_confirmation"]
        assert _tick(runtime, jobs, due + timedelta(hours=2)).confirmations == 0
        assert jobs.run(runtime) == []
    finally:
        controller.stop()
    assert handler.copies() == {"new@example.org": 1}
    assert _late(runtime, due + timedelta(hours=2)) == []
    with runtime.session() as session:
        row = session.get(Subscriber, reader.id)
        assert row.confirm_sent_at is not None and row.confirm_error is None


def test_a_lost_confirmation_job_is_sent_by_the_tick(settings, engine, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the job queued at subscription never ran (broker lost it): a stale period
    later the tick queues it once, and the reader gets one confirmation."""
    url, handler = smtp_server
    runtime = Runtime(replace(settings, smtp_url=url), _engine=engine)
    with runtime.session() as session:
        add_subscriber(session, settings.secret_key, "lost@example.org", ("ru", "en"))
    jobs = RecordingJobs()
    now = utcnow()
    assert _tick(runtime, jobs, now).confirmations == 0  # its own job may still be on the way
    later = now + timedelta(seconds=settings.stale_after + 1)
    assert _tick(runtime, jobs, later).confirmations == 1
    assert _tick(runtime, jobs, later).confirmations == 0
    jobs.run(runtime)
    assert {r: len(c) for r, c in handler.by_recipient().items()} == {"lost@example.org": 1}


def test_expired_request_is_given_up_and_shown_so(settings, engine) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a confirmation still unsent when its link would have expired (7 days) is not
    retried any more; staff see it as given up."""
    runtime = Runtime(replace(settings, smtp_url=f"smtp://127.0.0.1:{free_port()}"), _engine=engine)
    with runtime.session() as session:
        reader = add_subscriber(session, settings.secret_key, "old@example.org", ("en",))
    run_job(runtime, "send_confirmation", {"subscriber_id": reader.id})
    week_later = utcnow() + timedelta(days=8)
    assert _tick(runtime, RecordingJobs(), week_later).confirmations == 0
    [late] = _late(runtime, week_later)
    assert late.email == "old@example.org" and late.next_try is None


def test_every_job_declares_its_retry_policy() -> None:
    """Scenario: the registry names each job once with a handler and a retry policy that
    says what the tick does when the job is lost."""
    assert set(JOBS) == {"plan", "send_batch", "send_confirmation", "tick"}
    for name, job in JOBS.items():
        assert job.name == name and callable(job.handler)
        assert job.retry.recovery, name
    assert JOBS["send_batch"].retry.max_retries is None and JOBS["send_batch"].retry.come_back
    assert JOBS["plan"].retry.countdown(10) == 60.0


@pg_only
@pytest.mark.slow
def test_broker_down_when_a_pending_reader_asks_again(
    broker_settings, engine, smtp_server, redis_server
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a pending reader's first confirmation left; a day later they ask again while
    Redis is down, so that job is never published. Redis comes back: the beat's tick queues
    it through Celery, a real worker sends it, and the reader has exactly two confirmations
    (one per request); the next ticks queue nothing."""
    from dispatch_kit import celery_worker, wait_until

    from newsletter import subscriptions
    from workers.publish import celery_jobs

    url, handler = smtp_server
    settings = replace(broker_settings, smtp_url=url)
    runtime = Runtime(settings, _engine=engine, broker_jobs=celery_jobs)
    address = "again@example.org"
    with runtime.session() as session:
        reader = subscriptions.subscribe(session, settings.secret_key, address, "be").subscriber
    run_job(runtime, "send_confirmation", {"subscriber_id": reader.id})
    redis_server.stop()
    try:
        with runtime.session() as session:
            subscriptions.subscribe(session, settings.secret_key, address, "be,en")
            runtime.jobs.enqueue(session, "send_confirmation", subscriber_id=reader.id)
    finally:
        redis_server.start()
    assert len(handler.by_recipient()[address]) == 1
    later = utcnow() + timedelta(seconds=settings.stale_after + 1)
    with celery_worker(settings):
        assert _tick(runtime, runtime.jobs, later).confirmations == 1  # type: ignore[arg-type]
        wait_until(lambda: len(handler.by_recipient()[address]) == 2, timeout=30)
        assert _tick(runtime, runtime.jobs, later + timedelta(hours=2)).confirmations == 0  # type: ignore[arg-type]
    assert len(handler.by_recipient()[address]) == 2

"""Planning a send: deliveries, batches, claims and the edition's state machine."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from dispatch_kit import WEEK, pg_only
from sqlalchemy import func, select

from newsletter import dispatch
from newsletter.dispatch import store
from newsletter.errors import IllegalTransition, NotFound
from newsletter.models import Delivery, EditionStatus, SubscriberStatus, utcnow


def test_plan_is_set_based_and_repeat_safe(runtime, edition, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: sending twice plans one delivery per active reader and enqueues batches."""
    readers(60)
    readers(3, status=SubscriberStatus.pending, prefix="pending")
    readers(2, status=SubscriberStatus.unsubscribed, prefix="gone")
    with runtime.session() as session:
        started = dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
        assert recording_jobs.published == []  # nothing leaves before the commit
    assert (started.status, started.planned, started.total) == (EditionStatus.sending, 60, 60)
    assert started.batches == 3  # batch_size 25 in these tests
    ranges = [(kw["first_id"], kw["last_id"]) for _, kw in recording_jobs.published]
    assert ranges[-1][1] is None and all(a <= b for a, b in ranges[:-1])

    readers(5, prefix="late")
    with runtime.session() as session:
        again = dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
        total = session.scalar(select(func.count()).select_from(Delivery))
    assert (again.planned, again.total, total) == (5, 65, 65)


def test_claims_never_overlap(runtime, edition, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: claims hand out each queued delivery once, even from several threads."""
    readers(120)
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
    seen: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with runtime.sessions.begin() as session:
                claims = store.claim(session, edition.id, 0, None, 7, utcnow())
            if not claims:
                return
            with lock:
                seen.extend(c.delivery_id for c in claims)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == len(set(seen)) == 120


@pg_only
def test_stale_claims_are_requeued(runtime, edition, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a claim older than the stale timeout goes back to the queue."""
    readers(10)
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
    long_ago = utcnow() - timedelta(minutes=10)
    with runtime.sessions.begin() as session:
        claims = store.claim(session, edition.id, 0, None, 4, long_ago)
    with runtime.sessions.begin() as session:
        n = store.requeue_stale(session, [edition.id], utcnow() - timedelta(seconds=2), 20)
    assert n == len(claims) == 4
    with runtime.session() as session:
        assert dispatch.progress(session, WEEK).queued == 10


def test_state_machine_refuses_illegal_moves(runtime, edition, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a draft cannot be paused or resumed; a cancelled edition cannot restart."""
    with pytest.raises(IllegalTransition), runtime.session() as session:
        dispatch.pause(session, WEEK)
    with pytest.raises(IllegalTransition), runtime.session() as session:
        dispatch.resume(session, WEEK)
    with runtime.session() as session:
        dispatch.cancel(session, WEEK)
    with pytest.raises(IllegalTransition), runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
    with pytest.raises(NotFound), runtime.session() as session:
        dispatch.progress(session, "1999-W01")


def test_schedule_then_send_when_due(runtime, edition, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: --at stores the time; the edition starts only once it is due."""
    readers(3)
    at = utcnow() + timedelta(hours=2)
    with runtime.session() as session:
        started = dispatch.start_send(session, runtime.settings, WEEK, at=at, jobs=recording_jobs)
    assert started.status is EditionStatus.scheduled
    with runtime.session() as session:
        assert dispatch.progress(session, WEEK).total == 0
    assert recording_jobs.published == []


def test_no_readers_no_send(runtime, edition, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: with nobody subscribed, send is refused and the edition stays a draft."""
    from newsletter.errors import Conflict

    with pytest.raises(Conflict, match="no active subscribers"), runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
    with runtime.session() as session:
        assert dispatch.progress(session, WEEK).status is EditionStatus.draft

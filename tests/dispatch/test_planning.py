"""Planning a send: deliveries, batches, claims and the edition's state machine."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from dispatch_kit import WEEK, pg_only
from sqlalchemy import func, select

from newsletter import dispatch
from newsletter.dispatch import store
from newsletter.errors import IllegalTransition, NotFound
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
    utcnow,
)


def test_plan_is_set_based_and_repeat_safe(runtime, edition, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: sending twice plans one delivery per active reader, in batches that cover
    them all: the starter plans the first batch, a `plan` job the rest."""
    readers(60)
    readers(3, status=SubscriberStatus.pending, prefix="pending")
    readers(2, status=SubscriberStatus.unsubscribed, prefix="gone")
    with runtime.session() as session:
        started = dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
        assert recording_jobs.published == []  # nothing leaves before the commit
    assert (started.status, started.planned, started.total) == (EditionStatus.sending, 25, 25)
    assert (started.batches, started.planning) == (1, True)  # batch_size 25 in these tests
    # The planner goes first, so that a worker takes it before the batches behind it.
    assert [n for n, _ in recording_jobs.published] == ["plan", "send_batch"]
    assert recording_jobs.run(runtime, "plan") == ["plan"]
    ranges = [(kw["first_id"], kw["last_id"]) for _, kw in recording_jobs.published]
    with runtime.session() as session:
        ids = sorted(session.scalars(select(Delivery.id)))
        assert dispatch.progress(session, WEEK).total == 60
    assert [ids.index(a) for a, _ in ranges] == [0, 25, 50]  # closed ranges cover all
    assert [ids.index(b) for _, b in ranges] == [24, 49, 59]

    readers(5, prefix="late")
    recording_jobs.published.clear()
    with runtime.session() as session:
        again = dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
    assert (again.planned, again.total) == (0, 60)  # the late ones come after the first 25
    recording_jobs.run(runtime, "plan")
    with runtime.session() as session:
        total = session.scalar(select(func.count()).select_from(Delivery))
        assert dispatch.progress(session, WEEK).total == total == 65


def _sent_to(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    with runtime.session() as session:
        return list(
            session.scalars(
                select(Subscriber.email)
                .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                .where(Delivery.status == DeliveryStatus.sent)
            )
        )


def _run_all(runtime, jobs) -> dispatch.Progress:  # type: ignore[no-untyped-def]
    """Every published job run, as workers would; where the send stands then."""
    jobs.run(runtime)
    with runtime.session() as session:
        return dispatch.progress(session, WEEK)


def test_a_long_list_is_planned_in_chunks(runtime, edition, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the first batch leaves before the rest is planned; the edition is sent only
    once every reader has had their one email."""
    people = readers(50)
    runtime = replace(runtime, settings=replace(runtime.settings, batch_size=10, plan_chunk=20))
    with runtime.session() as session:
        started = dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
    assert (started.planned, started.total, started.batches, started.planning) == (10, 10, 1, True)

    assert recording_jobs.run(runtime, "send_batch") == ["send_batch"]
    with runtime.session() as session:
        p = dispatch.progress(session, WEEK)
    assert (p.status, p.sent, p.total, p.planning, p.finished) == (
        EditionStatus.sending, 10, 10, True, False
    )  # fmt: skip

    # Starting again while planning adds nothing; it only makes sure a planner is on it.
    with runtime.session() as session:
        again = dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
    assert (again.planned, again.total, again.planning) == (0, 10, True)

    # The `plan` jobs: the first plans 20 + 20 (two batches each), the second finds nothing.
    assert recording_jobs.run(runtime, "plan") == ["plan", "plan"]
    assert [n for n, _ in recording_jobs.published] == ["send_batch"] * 4
    p = _run_all(runtime, recording_jobs)
    assert (p.status, p.sent, p.total, p.planning) == (EditionStatus.sent, 50, 50, False)
    assert sorted(_sent_to(runtime)) == sorted(r.email for r in people)


def test_pause_stops_planning_and_resume_goes_on(runtime, edition, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: paused mid-planning, no more readers are planned; resume plans the rest."""
    readers(30)
    runtime = replace(runtime, settings=replace(runtime.settings, plan_chunk=10))
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
        dispatch.pause(session, WEEK)
    recording_jobs.published.clear()
    assert dispatch.plan_rest(runtime.sessions, runtime.settings, edition.id, recording_jobs) == 0
    with runtime.session() as session:
        assert dispatch.progress(session, WEEK).total == 25
        dispatch.resume(session, WEEK, settings=runtime.settings, jobs=recording_jobs)
    assert sorted(n for n, _ in recording_jobs.published) == ["plan", "send_batch"]
    p = _run_all(runtime, recording_jobs)
    assert (p.status, p.sent, p.total) == (EditionStatus.sent, 30, 30)


def test_tick_restarts_lost_planning(runtime, edition, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the `plan` job is lost; the tick sees planning stalled and starts another."""
    readers(40)
    runtime = replace(runtime, settings=replace(runtime.settings, plan_chunk=10))
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
    recording_jobs.published.clear()  # the broker lost them all
    with runtime.session() as session:
        report = dispatch.tick(session, runtime.settings, recording_jobs, idle_after=0)
    assert report.reenqueued == [WEEK] and report.finished == []
    assert sorted(n for n, _ in recording_jobs.published) == ["plan", "send_batch"]
    p = _run_all(runtime, recording_jobs)
    assert (p.status, p.sent, p.total) == (EditionStatus.sent, 40, 40)


def test_cancel_mid_planning_plans_nobody_more(runtime, edition, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: cancelled while planning: the planner stops and the queued are skipped."""
    readers(30)
    runtime = replace(runtime, settings=replace(runtime.settings, plan_chunk=10))
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
        dispatch.cancel(session, WEEK)
    p = _run_all(runtime, recording_jobs)
    assert (p.status, p.total, p.skipped, p.sent, p.planning) == (
        EditionStatus.cancelled, 25, 25, 0, False
    )  # fmt: skip


def test_claims_never_overlap(runtime, edition, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: claims hand out each queued delivery once, even from several threads."""
    readers(120)
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
    dispatch.plan_rest(runtime.sessions, runtime.settings, edition.id, recording_jobs)
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
        n = store.requeue_stale(session, edition.id, utcnow() - timedelta(seconds=2), 20)
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

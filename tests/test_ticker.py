"""The tick lease: one ticker of an installation ticks, another takes over when it stops."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from newsletter import scheduler
from newsletter.models import SchedulerState, utcnow
from newsletter.runtime import Runtime
from newsletter.ticker import Ticker


def wait_for(predicate: Callable[[], bool], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_one_of_two_tickers_ticks_and_the_other_takes_over(runtime: Runtime) -> None:
    """Scenario: two processes' tickers start together: exactly one holds the lease and the
    ticks come from it; when it stops, the other takes the lease and ticks."""
    tickers = [Ticker(runtime, every=0.2), Ticker(runtime, every=0.2)]
    for ticker in tickers:
        ticker.start()
    try:
        assert wait_for(lambda: any(t.holding for t in tickers))
        time.sleep(0.6)  # a few more intervals: still only one
        holders = [t for t in tickers if t.holding]
        assert len(holders) == 1
        with runtime.session() as session:
            state = session.scalar(select(SchedulerState))
            assert state is not None and state.holder == holders[0].holder
            assert scheduler.health(session, utcnow(), 1.0).running
        first, other = holders[0], next(t for t in tickers if t is not holders[0])
        first.stop()
        assert wait_for(lambda: other.holding, timeout=5)
    finally:
        for ticker in tickers:
            ticker.stop()


def test_a_dead_holders_lease_runs_out(runtime: Runtime) -> None:
    """Scenario: the holder died without giving the lease up: nobody else may tick until it
    runs out, then the next asker gets it."""
    now = utcnow()
    with runtime.session() as session:
        assert scheduler.take_lease(session, "dead:1", now, 30)
    with runtime.session() as session:
        assert not scheduler.take_lease(session, "alive:2", now + timedelta(seconds=29), 30)
        assert scheduler.take_lease(session, "dead:1", now + timedelta(seconds=29), 30)  # renews
    with runtime.session() as session:
        assert scheduler.take_lease(session, "alive:2", now + timedelta(seconds=60), 30)


def test_health_after_two_intervals_without_a_tick(runtime: Runtime) -> None:
    """Scenario: ticks stop: the scheduler counts as running for two intervals, then not."""
    now = utcnow()
    with runtime.session() as session:
        assert not scheduler.health(session, now, 30).running  # never ticked
        scheduler.record_tick(session, now, by="host:7")
    with runtime.session() as session:
        assert scheduler.health(session, now + timedelta(seconds=60), 30).running
        late = scheduler.health(session, now + timedelta(seconds=61), 30)
        assert (late.running, late.last_tick_by, late.word) == (False, "host:7", "not running")

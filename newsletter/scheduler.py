"""The scheduler's tick, as the database sees it: who may run it, and when it last ran.

The tick (dispatch.tick) is safe to repeat, but one process per installation should run it:
the web processes of `serve --workers N`, on one machine or several, and an in-process
`beat` share one lease row in `scheduler_state`. Holding it is an UPDATE that succeeds only
for the holder or once the lease has run out, so it works alike on SQLite and PostgreSQL.
Every tick, whoever runs it (Celery beat included), writes its time: /healthz and the staff
area say the scheduler is not running when two intervals pass without one.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from newsletter.models import SchedulerState

TICK = "tick"  # the row's name: one lease per installation


def this_process() -> str:
    """How a process names itself in the lease and the last tick: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _ensure_row(session: Session) -> None:
    """Make the tick's row if it is missing, whoever else is making it at the same time."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(SchedulerState).values(name=TICK).on_conflict_do_nothing())


def take_lease(session: Session, holder: str, now: datetime, seconds: float) -> bool:
    """Hold the tick lease until now + seconds; False while another holder's lease runs."""
    _ensure_row(session)
    taken = cast(
        "CursorResult[Any]",
        session.execute(
            update(SchedulerState)
            .where(
                SchedulerState.name == TICK,
                or_(
                    SchedulerState.holder == holder,
                    SchedulerState.holder.is_(None),
                    SchedulerState.lease_until.is_(None),
                    SchedulerState.lease_until < now,
                ),
            )
            .values(holder=holder, lease_until=now + timedelta(seconds=seconds))
        ),
    )
    return bool(taken.rowcount)


def release_lease(session: Session, holder: str) -> None:
    """Give the lease up (a process stopping), so another takes it at its next attempt."""
    session.execute(
        update(SchedulerState)
        .where(SchedulerState.name == TICK, SchedulerState.holder == holder)
        .values(holder=None, lease_until=None)
    )


def record_tick(session: Session, now: datetime, by: str | None = None) -> None:
    """Note that a tick ran now (called by the tick itself, in every mode)."""
    _ensure_row(session)
    session.execute(
        update(SchedulerState)
        .where(SchedulerState.name == TICK)
        .values(last_tick_at=now, last_tick_by=by or this_process())
    )


@dataclass(frozen=True)
class SchedulerHealth:
    running: bool
    last_tick_at: datetime | None
    last_tick_by: str | None

    @property
    def word(self) -> str:
        return "running" if self.running else "not running"


def health(session: Session, now: datetime, every: float) -> SchedulerHealth:
    """Running when a tick ran within the last two intervals."""
    row = session.execute(
        select(SchedulerState.last_tick_at, SchedulerState.last_tick_by).where(
            SchedulerState.name == TICK
        )
    ).one_or_none()
    last, by = (row[0], row[1]) if row is not None else (None, None)
    running = last is not None and now - last <= timedelta(seconds=2 * every)
    return SchedulerHealth(running, last, by)

"""The beat tick: due schedules, the weekly rule, recovery of lost work, and housekeeping.

Schedules live in the database, so the tick is stateless and safe to run again at any time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.dispatch import store
from newsletter.dispatch.handoff import Jobs
from newsletter.dispatch.planning import enqueue_batches, enqueue_planning, start_send
from newsletter.dispatch.welcome import late_editions
from newsletter.errors import Conflict, EditionIncomplete
from newsletter.models import Edition, EditionStatus, utcnow
from newsletter.scheduler import record_tick

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    started: list[str] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)  # week -> why it is not sent yet
    requeued: int = 0  # stale claims queued again
    reenqueued: list[str] = field(default_factory=list)  # editions whose batches were re-sent
    finished: list[str] = field(default_factory=list)
    purged: int = 0
    confirmations: int = 0  # confirmation emails queued again (lost, or due for a retry)

    def __bool__(self) -> bool:
        return bool(
            self.started
            or self.waiting
            or self.requeued
            or self.reenqueued
            or self.finished
            or self.purged
            or self.confirmations
        )


def tick(
    session: Session,
    settings: Settings,
    jobs: Jobs,
    *,
    now: datetime | None = None,
    idle_after: float | None = None,
) -> TickReport:
    """Run everything that is due; `idle_after` (default settings.stale_after) is how long a
    sending edition may go untouched before its remaining batches are enqueued again."""
    now = now or utcnow()
    report = TickReport()
    record_tick(session, now)  # /healthz and the staff area tell from this that ticks run
    _due_schedules(session, settings, jobs, now, report)
    if settings.weekly_send is not None:
        _weekly_rule(session, settings, jobs, now, report)
    _recover(session, settings, jobs, now, report, idle_after)
    from newsletter.dispatch.confirmation import resend_due

    report.confirmations = resend_due(session, settings, jobs, now)
    from newsletter.subscriptions import purge_expired_pending

    report.purged = purge_expired_pending(session, now=now)
    return report


def _due_schedules(
    session: Session, settings: Settings, jobs: Jobs, now: datetime, report: TickReport
) -> None:
    due = session.scalars(
        select(Edition.week).where(
            Edition.status == EditionStatus.scheduled, Edition.scheduled_at <= now
        )
    ).all()
    for week in due:
        _try_start(session, settings, jobs, week, now, report)


def _try_start(
    session: Session, settings: Settings, jobs: Jobs, week: str, now: datetime, report: TickReport
) -> None:
    try:
        with session.begin_nested():
            start_send(session, settings, week, jobs=jobs, now=now)
    except (EditionIncomplete, Conflict) as exc:
        edition = session.scalar(select(Edition).where(Edition.week == week))
        if edition is not None:
            edition.waiting_reason = str(exc)
        report.waiting[week] = str(exc)
    else:
        report.started.append(week)


def weekly_slot(settings: Settings, now: datetime) -> datetime | None:
    """The most recent weekly send time at or before `now` (in UTC), read in the local zone."""
    rule = settings.weekly_send
    if rule is None:
        return None
    tz = settings.tz
    local_today = now.astimezone(tz).date()
    slot_day = local_today - timedelta(days=local_today.isoweekday() - rule.weekday)
    slot = datetime.combine(slot_day, rule.at, tzinfo=tz)
    if slot > now:
        slot = datetime.combine(slot_day - timedelta(days=7), rule.at, tzinfo=tz)
    return slot


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _weekly_rule(
    session: Session, settings: Settings, jobs: Jobs, now: datetime, report: TickReport
) -> None:
    """Send last week's edition at the weekly slot, or as soon after it as it is complete."""
    slot = weekly_slot(settings, now)
    assert slot is not None
    week = iso_week(slot.date() - timedelta(days=7))
    edition = session.scalar(select(Edition).where(Edition.week == week))
    if edition is None:
        report.waiting[week] = f"no edition for {week} has been imported"
        return
    if edition.status is not EditionStatus.draft:
        return  # scheduled, sending, sent, paused or cancelled: staff or an earlier tick decided
    _try_start(session, settings, jobs, week, now, report)


def _recover(
    session: Session,
    settings: Settings,
    jobs: Jobs,
    now: datetime,
    report: TickReport,
    idle_after: float | None,
) -> None:
    """Stale claims go back to the queue; batches no live task holds are enqueued again."""
    editions = [
        *session.scalars(
            select(Edition).where(Edition.status.in_([EditionStatus.sending, EditionStatus.paused]))
        ),
        *late_editions(session),  # sent, with a new reader's welcome still to go
    ]
    for edition in editions:
        report.requeued += _requeue_dead_claims(session, settings, edition, now)
    idle = timedelta(seconds=settings.stale_after if idle_after is None else idle_after)
    for edition in editions:
        if edition.status is EditionStatus.paused:
            continue
        if store.finish_if_done(session, edition.id, now):
            report.finished.append(edition.week)
            continue
        touched = store.as_utc(edition.updated_at)
        if touched is not None and touched > now - idle:
            continue  # a worker recorded progress lately: its tasks are alive
        planning = enqueue_planning(session, edition, jobs)
        if enqueue_batches(session, settings, edition.id, jobs, due_by=now) or planning:
            store.touch(session, edition.id, now)
            report.reenqueued.append(edition.week)


def _requeue_dead_claims(
    session: Session, settings: Settings, edition: Edition, now: datetime
) -> int:
    """Claims are taken back only when seen stale twice, a stale period apart.

    A live worker renews its claims every tenth of that period; but after the database was
    away, every claim looks stale at once, and the tick may get there before the workers.
    So the first sight only notes the time; what is still unrenewed a full period later
    (while the database answered the tick, and so the workers) belonged to a dead worker.
    """
    period = timedelta(seconds=settings.stale_after)
    checked = store.as_utc(edition.claims_checked_at)
    requeued = 0
    if checked is not None and checked <= now - period:
        requeued = store.requeue_stale(session, edition.id, checked - period, settings.max_attempts)
        checked = None
    if checked is None:
        stale = store.has_stale_claims(session, edition.id, now - period)
        store.note_claims_checked(session, edition.id, now if stale else None)
    return requeued

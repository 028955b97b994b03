"""Starting a send: the edition moves to sending, deliveries are planned, batches enqueued.

Planning goes in chunks, each committed with its batches, so the first messages leave while a
large list is still being planned: the starter plans one batch's worth of readers, and a
`plan` job the rest, `settings.plan_chunk` at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from newsletter.config import Settings
from newsletter.dispatch import store
from newsletter.dispatch.handoff import Jobs
from newsletter.dispatch.states import can_move, move
from newsletter.errors import Conflict, IllegalTransition, NotFound
from newsletter.languages import parse_fallback
from newsletter.models import Edition, EditionStatus, Subscriber, SubscriberStatus, utcnow


@dataclass(frozen=True)
class SendStart:
    """What start_send did: scheduled for later, or planned and queued now."""

    week: str
    status: EditionStatus
    scheduled_at: datetime | None = None
    planned: int = 0  # deliveries added by this call
    total: int = 0  # deliveries of the edition so far
    batches: int = 0
    planning: bool = False  # a `plan` job goes on with the rest of the list


def edition_for_update(session: Session, week: str) -> Edition:
    """The week's edition, row-locked on PostgreSQL so two starters cannot both start it."""
    edition = session.scalar(
        select(Edition).where(Edition.week == week.strip().upper()).with_for_update()
    )
    if edition is None:
        raise NotFound(f"no edition for week {week}")
    return edition


def start_send(
    session: Session,
    settings: Settings,
    week: str,
    *,
    at: datetime | None = None,
    fallback_language: str | None = None,
    jobs: Jobs,
    now: datetime | None = None,
) -> SendStart:
    """Schedule the edition for `at`, or send it now: safe to repeat, nobody gets it twice."""
    now = now or utcnow()
    edition = edition_for_update(session, week)
    fallback = parse_fallback(fallback_language) or edition.fallback_language
    if at is not None and at > now:
        if edition.status not in (EditionStatus.draft, EditionStatus.scheduled):
            raise IllegalTransition(f"edition {edition.week} is {edition.status}: cannot schedule")
        _check_sendable(edition, fallback)
        edition.fallback_language = fallback
        move(edition, EditionStatus.scheduled)
        edition.scheduled_at = at
        edition.waiting_reason = None
        return SendStart(edition.week, edition.status, scheduled_at=at)
    if edition.status is EditionStatus.paused:
        raise IllegalTransition(f"edition {edition.week} is paused: resume it instead")
    if edition.status is EditionStatus.sent:
        raise IllegalTransition(_already_sent(edition, settings))
    if edition.status is not EditionStatus.sending:
        # Every check before the first change: a refusal leaves the edition as it was.
        if not can_move(edition.status, EditionStatus.sending):
            move(edition, EditionStatus.sending)  # raises IllegalTransition, changes nothing
        _check_sendable(edition, fallback)
        if not _has_readers(session):
            # Sent to nobody would be final: refuse, so the edition waits for its readers.
            raise Conflict(f"edition {edition.week}: there are no active subscribers to send to")
        edition.fallback_language = fallback
        move(edition, EditionStatus.sending)
        edition.started_at = now
    edition.waiting_reason = None
    edition.updated_at = now
    if edition.plan_cursor is not None:
        # Being planned: starting again only makes sure a planner is on it (a second one
        # waits on the edition's row lock and finds its chunks done).
        enqueue_planning(session, edition, jobs)
        return _started(edition, planned=0, batches=0)
    edition.plan_cursor = 0
    return plan_next_chunk(session, settings, edition, jobs, now, settings.batch_size)


def _already_sent(edition: Edition, settings: Settings) -> str:
    """Why a sent edition is not sent again, and how later readers get it."""
    when = edition.started_at.date().isoformat() if edition.started_at else "earlier"
    days = settings.welcome_latest_days
    later = (
        f"readers who confirm within {days} day{'s' if days != 1 else ''} of its start "
        "receive it then"
        if days > 0
        else "readers who joined since get the next edition"
    )
    return (
        f"edition {edition.week} was sent on {when} to {edition.sent_count} readers and is "
        f"never sent again; {later}"
    )


def _has_readers(session: Session) -> bool:
    active = select(Subscriber.id).where(Subscriber.status == SubscriberStatus.active).limit(1)
    return session.scalar(active) is not None


def _check_sendable(edition: Edition, fallback_language: str | None) -> None:
    from newsletter.editions import check_sendable

    check_sendable(edition, fallback_language)


def _started(edition: Edition, *, planned: int, batches: int) -> SendStart:
    return SendStart(
        edition.week,
        edition.status,
        planned=planned,
        total=edition.planned_count,
        batches=batches,
        planning=edition.plan_cursor is not None,
    )


def plan_next_chunk(
    session: Session,
    settings: Settings,
    edition: Edition,
    jobs: Jobs,
    now: datetime,
    size: int,
    *,
    hand_on: bool = True,
) -> SendStart:
    """Plan `size` readers after `edition.plan_cursor` and enqueue their batches (published
    when the session commits); with `hand_on`, a `plan` job for the rest goes first, so that
    a worker takes it before the batches queued behind it."""
    assert edition.plan_cursor is not None
    ids, last = store.plan_chunk(session, edition.id, edition.plan_cursor, size)
    edition.plan_cursor = last
    edition.planned_count = (edition.planned_count or 0) + len(ids)
    edition.updated_at = now  # the planner's heartbeat
    if hand_on:
        enqueue_planning(session, edition, jobs)
    ranges = store.ranges_of(ids, settings.batch_size)
    for first, final in ranges:
        jobs.enqueue(session, "send_batch", edition_id=edition.id, first_id=first, last_id=final)
    if last is None and store.finish_if_done(session, edition.id, now):
        session.refresh(edition)
    return _started(edition, planned=len(ids), batches=len(ranges))


def plan_rest(
    sessions: sessionmaker[Session], settings: Settings, edition_id: int, jobs: Jobs
) -> int:
    """The `plan` job: the rest of the list, chunk after chunk, each chunk's batches published
    as it commits. Stops when the edition is planned or no longer sending; returns the
    deliveries it added. A crash loses at most the chunk in hand: the tick starts it again."""
    added = 0
    while True:
        with sessions.begin() as session:
            edition = session.scalar(
                select(Edition).where(Edition.id == edition_id).with_for_update()
            )
            if (
                edition is None
                or edition.status is not EditionStatus.sending
                or edition.plan_cursor is None
            ):
                return added
            chunk = plan_next_chunk(
                session, settings, edition, jobs, utcnow(), settings.plan_chunk, hand_on=False
            )
            added += chunk.planned


def enqueue_planning(session: Session, edition: Edition, jobs: Jobs) -> bool:
    """Hand the rest of the planning to a `plan` job, if any is left."""
    if edition.plan_cursor is None:
        return False
    jobs.enqueue(session, "plan", edition_id=edition.id)
    return True


def enqueue_batches(
    session: Session,
    settings: Settings,
    edition_id: int,
    jobs: Jobs,
    *,
    due_by: datetime | None = None,
) -> int:
    """One send_batch job per range of queued deliveries, published after commit."""
    ranges = store.batch_ranges(session, edition_id, settings.batch_size, due_by=due_by)
    for first, last in ranges:
        jobs.enqueue(session, "send_batch", edition_id=edition_id, first_id=first, last_id=last)
    return len(ranges)

"""Staff control of a send: pause, resume, cancel, and where it stands."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.dispatch import store
from newsletter.dispatch.handoff import Jobs
from newsletter.dispatch.planning import edition_for_update, enqueue_batches, enqueue_planning
from newsletter.dispatch.states import move
from newsletter.errors import IllegalTransition, NotFound
from newsletter.models import DeliveryStatus, Edition, EditionStatus, utcnow


@dataclass(frozen=True)
class Progress:
    week: str
    status: EditionStatus
    queued: int
    sending: int
    sent: int
    failed: int
    skipped: int
    total: int  # deliveries planned so far
    planning: bool = False  # more readers are still being planned
    reason: str | None = None  # why it waits or is paused, when it says

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.skipped

    @property
    def finished(self) -> bool:
        return self.status in (EditionStatus.sent, EditionStatus.cancelled) or (
            self.status is EditionStatus.sending
            and not self.planning
            and self.total > 0
            and self.done == self.total
        )


def progress(session: Session, week: str) -> Progress:
    edition = session.scalar(select(Edition).where(Edition.week == week.strip().upper()))
    if edition is None:
        raise NotFound(f"no edition for week {week}")
    n = store.counts(session, edition.id)
    return Progress(
        week=edition.week,
        status=edition.status,
        queued=n[DeliveryStatus.queued],
        sending=n[DeliveryStatus.sending],
        sent=n[DeliveryStatus.sent],
        failed=n[DeliveryStatus.failed],
        skipped=n[DeliveryStatus.skipped],
        total=sum(n.values()),
        planning=edition.plan_cursor is not None,
        reason=edition.waiting_reason,
    )


def pause(session: Session, week: str) -> Edition:
    """Workers stop after the messages they hold (at most one sub-batch each)."""
    edition = edition_for_update(session, week)
    move(edition, EditionStatus.paused)
    return edition


def resume(
    session: Session, week: str, *, settings: Settings | None = None, jobs: Jobs | None = None
) -> Edition:
    """Sending again; with jobs given, the remaining batches are enqueued at once
    (otherwise the next beat tick finds them)."""
    edition = edition_for_update(session, week)
    if edition.status is not EditionStatus.paused:
        raise IllegalTransition(f"edition {edition.week} is {edition.status}, not paused")
    move(edition, EditionStatus.sending)
    edition.waiting_reason = None
    now = utcnow()
    # No task holds the edition now: say so, and the next tick enqueues what is left.
    edition.updated_at = store.IDLE if jobs is None else now
    queued_again = (
        jobs is not None
        and settings is not None
        and enqueue_batches(session, settings, edition.id, jobs)
    )
    if jobs is not None and enqueue_planning(session, edition, jobs):
        queued_again = True
    if jobs is not None and not queued_again:
        store.finish_if_done(session, edition.id, now)
        session.refresh(edition)
    return edition


def cancel(session: Session, week: str) -> Edition:
    """A scheduled or running send stops for good; what was still queued is skipped."""
    edition = edition_for_update(session, week)
    move(edition, EditionStatus.cancelled)
    edition.finished_at = utcnow()
    edition.plan_cursor = None  # nobody else is planned
    store.skip_queued(session, edition.id, "send cancelled")
    n = store.counts(session, edition.id)
    edition.sent_count = n[DeliveryStatus.sent]
    edition.failed_count = n[DeliveryStatus.failed]
    edition.skipped_count = n[DeliveryStatus.skipped]
    return edition


def retry_failed(session: Session, week: str, *, settings: Settings, jobs: Jobs) -> int:
    """Queue an edition's failed deliveries again (readers still active); returns how many.

    A sending or sent edition sends them at once (a sent one stays sent, like a late
    welcome); a paused one when it is resumed.
    """
    edition = edition_for_update(session, week)
    if edition.status not in (EditionStatus.sending, EditionStatus.paused, EditionStatus.sent):
        raise IllegalTransition(
            f"edition {edition.week} is {edition.status}: only a sending, paused or sent "
            "edition has deliveries to retry"
        )
    count = store.requeue_failed(session, edition.id)
    if count and edition.status is not EditionStatus.paused:
        enqueue_batches(session, settings, edition.id, jobs)
    return count

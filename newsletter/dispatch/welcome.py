"""The latest edition for a new reader: one more delivery of it, sent like any other.

When someone confirms and the newest edition that went out started at most
`settings.welcome_latest_days` ago, they get a delivery of it planned by the same SQL as a
send (so at most one per reader and edition, however often they confirm) and a send_batch
job for it. A sent edition takes such late deliveries: workers send them and its counts
follow; the tick recovers them like any other (`late_editions`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.dispatch import store
from newsletter.dispatch.handoff import Jobs
from newsletter.models import Edition, EditionStatus, SubscriberStatus, utcnow

# Editions readers already hold (the archive's rule): a paused one sends its welcome on resume.
WENT_OUT = (EditionStatus.sending, EditionStatus.paused, EditionStatus.sent)


def latest_edition(session: Session, settings: Settings, now: datetime) -> Edition | None:
    """The newest edition that went out, if it started within the welcome window."""
    if settings.welcome_latest_days <= 0:
        return None
    edition = session.scalar(
        select(Edition)
        .where(Edition.status.in_(WENT_OUT), Edition.started_at.is_not(None))
        .order_by(Edition.started_at.desc(), Edition.id.desc())
        .limit(1)
    )
    if edition is None:
        return None
    started = store.as_utc(edition.started_at)
    if started is None or started < now - timedelta(days=settings.welcome_latest_days):
        return None
    return edition


def welcome(
    session: Session,
    settings: Settings,
    subscriber_id: int,
    jobs: Jobs,
    *,
    now: datetime | None = None,
) -> str | None:
    """Plan the latest edition for a reader who has just confirmed; the week, or None when
    there is nothing to send (off, none recent enough, not active, or already theirs)."""
    now = now or utcnow()
    edition = latest_edition(session, settings, now)
    if edition is None:
        return None
    reader = store.S.c
    ids = store.plan_subscribers(
        session,
        edition.id,
        reader.id == subscriber_id,
        reader.status == SubscriberStatus.active.value,
    )
    if not ids:
        return None
    edition.planned_count = (edition.planned_count or 0) + len(ids)
    # The heartbeat: a job holds the delivery now; should it be lost, the tick re-enqueues it.
    edition.updated_at = now
    jobs.enqueue(session, "send_batch", edition_id=edition.id, first_id=ids[0], last_id=ids[-1])
    return edition.week


def late_editions(session: Session) -> list[Edition]:
    """Sent editions with a late delivery queued or in flight: the tick looks after them."""
    D = store.D
    unfinished = exists().where(
        D.c.edition_id == Edition.id,
        D.c.status.in_([store.Q.queued.value, store.Q.sending.value]),
    )
    return list(
        session.scalars(select(Edition).where(Edition.status == EditionStatus.sent, unfinished))
    )

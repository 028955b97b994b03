"""Finding subscribers for staff: by part of the address or name, and by status."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from newsletter.errors import NotFound, ValidationError
from newsletter.models import Event, Subscriber, SubscriberStatus

MAX_QUERY = 200
# Ids above PostgreSQL's bigint would be a database error, not "not found".
MAX_ID = 2**63 - 1


def _like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(
    session: Session,
    query: str | None = None,
    *,
    status: SubscriberStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Subscriber], int]:
    """Subscribers whose address or name contains `query` (case-insensitive), newest first,
    with the total number of matches."""
    conditions = []
    if query:
        if "\x00" in query or len(query) > MAX_QUERY:
            raise ValidationError("the search text is too long or holds a NUL character")
        pattern = _like_pattern(query.strip().lower())
        conditions.append(
            or_(
                Subscriber.email.like(pattern, escape="\\"),
                func.lower(Subscriber.name).like(pattern, escape="\\"),
            )
        )
    if status is not None:
        conditions.append(Subscriber.status == status)
    total = session.scalar(select(func.count()).select_from(Subscriber).where(*conditions)) or 0
    rows = session.scalars(
        select(Subscriber)
        .where(*conditions)
        .order_by(Subscriber.created_at.desc(), Subscriber.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


def get_subscriber(session: Session, subscriber_id: int) -> Subscriber:
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound(f"no subscriber with id {subscriber_id}")
    return subscriber


def history(session: Session, subscriber_id: int) -> Sequence[Event]:
    """A subscriber's events, oldest first."""
    return session.scalars(
        select(Event)
        .where(Event.subscriber_id == subscriber_id)
        .order_by(Event.created_at, Event.id)
    ).all()

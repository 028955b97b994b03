"""What staff see of returned mail: the list of bounces and complaints, one message with its
raw text, and each edition's bounce and complaint rates against the mailbox providers'
thresholds (Gmail, Yahoo and Microsoft throttle or refuse bulk senders above them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, literal, select, union
from sqlalchemy.orm import Session

from newsletter.errors import NotFound
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    Event,
    InboundKind,
    InboundMessage,
    Subscriber,
    SubscriberStatus,
)
from newsletter.subscriptions import EventKind

K = InboundKind
COMPLAINT_THRESHOLD = 0.001  # 0.1 %: Gmail's and Yahoo's bulk sender guidance
BOUNCE_THRESHOLD = 0.02  # 2 %
RAW_SHOWN = 262_144  # characters of a raw message shown on a page


@dataclass(frozen=True)
class Returned:
    """One row of the bounces page."""

    id: int
    received_at: datetime
    kind: str | None
    status: str  # received, processed, failed
    reason: str
    subscriber_id: int | None
    email: str | None
    subscriber_status: str | None
    edition_id: int | None
    week: str | None
    attributed_by: str | None
    has_raw: bool

    @property
    def can_reactivate(self) -> bool:
        return self.subscriber_status == SubscriberStatus.bounced.value


@dataclass(frozen=True)
class ReturnedDetail(Returned):
    recipient: str
    mail_from: str | None
    channel: str
    size: int
    truncated: bool
    detail: dict[str, object] | None
    error: str | None
    raw_text: str | None  # decoded for reading; None once erased


@dataclass(frozen=True)
class EditionRates:
    """Bounces and complaints of one edition, as shares of the messages it tried to deliver."""

    week: str
    attempted: int  # deliveries sent or failed
    bounces: int  # readers: refused while sending, or a hard or soft bounce that came back
    complaints: int
    bounce_rate: float
    complaint_rate: float
    warnings: list[str]


def _columns() -> tuple[Any, ...]:
    return (
        InboundMessage.id,
        InboundMessage.received_at,
        InboundMessage.kind,
        InboundMessage.status,
        InboundMessage.detail,
        InboundMessage.subscriber_id,
        Subscriber.email,
        Subscriber.status,
        InboundMessage.edition_id,
        Edition.week,
        InboundMessage.attributed_by,
        InboundMessage.raw.is_not(None),
    )


def _base(*columns: Any) -> Select[Any]:
    return (
        select(*columns)
        .outerjoin(Subscriber, Subscriber.id == InboundMessage.subscriber_id)
        .outerjoin(Edition, Edition.id == InboundMessage.edition_id)
    )


def _returned(row: Any) -> Returned:
    (ident, at, kind, status, detail, sid, email, sstatus, eid, week, by, has_raw) = row[:12]
    reason = (detail or {}).get("reason", "") if isinstance(detail, dict) else ""
    return Returned(
        id=ident,
        received_at=at,
        kind=kind.value if kind else None,
        status=status.value,
        reason=str(reason),
        subscriber_id=sid,
        email=email,
        subscriber_status=sstatus.value if sstatus else None,
        edition_id=eid,
        week=week,
        attributed_by=by,
        has_raw=bool(has_raw),
    )


def list_returned(
    session: Session,
    *,
    kind: InboundKind | None = None,
    attributed: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Returned], int]:
    """Newest first; filtered by kind and by whether a reader was named."""
    where = []
    if kind is not None:
        where.append(InboundMessage.kind == kind)
    if attributed is not None:
        named = InboundMessage.subscriber_id.is_not(None)
        where.append(named if attributed else ~named)
    total = session.scalar(select(func.count()).select_from(InboundMessage).where(*where)) or 0
    rows = session.execute(
        _base(*_columns())
        .where(*where)
        .order_by(InboundMessage.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [_returned(r) for r in rows], int(total)


def get_returned(session: Session, inbound_id: int) -> ReturnedDetail:
    row = session.execute(
        _base(
            *_columns(),
            InboundMessage.recipient,
            InboundMessage.mail_from,
            InboundMessage.channel,
            InboundMessage.size,
            InboundMessage.truncated,
            InboundMessage.detail,
            InboundMessage.error,
            InboundMessage.raw,
        ).where(InboundMessage.id == inbound_id)
    ).first()
    if row is None:
        raise NotFound(f"no returned message {inbound_id}")
    base = _returned(row)
    recipient, mail_from, channel, size, truncated, detail, error, raw = row[12:]
    return ReturnedDetail(
        **base.__dict__,
        recipient=recipient,
        mail_from=mail_from,
        channel=channel,
        size=size,
        truncated=truncated,
        detail=detail,
        error=error,
        raw_text=raw[:RAW_SHOWN].decode("utf-8", "replace") if raw is not None else None,
    )


def edition_rates(session: Session, edition: Edition) -> EditionRates:
    """Distinct readers who bounced or complained about this edition, over its attempts."""
    attempted = (
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.edition_id == edition.id,
                Delivery.status.in_([DeliveryStatus.sent, DeliveryStatus.failed]),
            )
        )
        or 0
    )

    def readers(kinds: tuple[InboundKind, ...], event_kinds: tuple[EventKind, ...]) -> int:
        came_back = select(InboundMessage.subscriber_id.label("sid")).where(
            InboundMessage.edition_id == edition.id,
            InboundMessage.kind.in_(kinds),
            InboundMessage.subscriber_id.is_not(None),
        )
        logged = select(Event.subscriber_id.label("sid")).where(
            Event.edition_id == edition.id,
            Event.kind.in_([k.value for k in event_kinds]),
            Event.subscriber_id.is_not(None),
        )
        both = union(came_back, logged).subquery()
        return int(session.scalar(select(func.count(literal(1))).select_from(both)) or 0)

    bounces = readers((K.hard_bounce, K.soft_bounce), (EventKind.bounced,))
    complaints = readers((K.complaint,), (EventKind.complained,))
    bounce_rate = bounces / attempted if attempted else 0.0
    complaint_rate = complaints / attempted if attempted else 0.0
    warnings = []
    if complaint_rate > COMPLAINT_THRESHOLD:
        warnings.append(
            f"Complaints are {complaint_rate:.2%} of this edition's messages, above the "
            f"{COMPLAINT_THRESHOLD:.1%} that Gmail, Yahoo and Microsoft tolerate from bulk senders."
        )
    if bounce_rate > BOUNCE_THRESHOLD:
        warnings.append(
            f"Bounces are {bounce_rate:.2%} of this edition's messages, above "
            f"{BOUNCE_THRESHOLD:.0%}: clean the list before the next send."
        )
    return EditionRates(
        week=edition.week,
        attempted=int(attempted),
        bounces=bounces,
        complaints=complaints,
        bounce_rate=bounce_rate,
        complaint_rate=complaint_rate,
        warnings=warnings,
    )

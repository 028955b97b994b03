"""What the digest does with what came back: store it raw, attribute it, apply the policy.

    store()     keeps the raw message (cut at the size limit) before anything parses it
    process()   classifies it (bounces.py), attributes it, and moves the reader:
                  hard bounce         -> bounced at once
                  soft bounce         -> bounced after SOFT_BOUNCE_LIMIT within SOFT_BOUNCE_DAYS
                                         with no good delivery in between
                  complaint (ARF)     -> complained (never mailed again without a new opt-in)
                  mail to the mailto  -> unsubscribed (source "mailto")
                  auto-reply, delayed -> nothing (logged as an event)
Staff undo a false bounce with subscriptions.reactivate().

Attribution, strictly: the signed token of the address the message came to; else a signed
return path in the report (ARF Original-Mail-From, the original's Return-Path); else the
token in the original Message-ID, and the report's recipient must be its reader (complaints
and auto-replies naming no recipient: the token alone); else the Message-ID of a delivery
sent before those tokens, with its reader named. A From address or a bare recipient address
attributes nothing.
Functions take a Session and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from newsletter import bounces
from newsletter.config import Settings
from newsletter.errors import NotFound, TokenError
from newsletter.message_ids import legacy_delivery_id, read_message_id
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    EventSource,
    InboundKind,
    InboundMessage,
    InboundStatus,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from newsletter.returnpath import InboundAddress, Target
from newsletter.subscriptions import (
    EventKind,
    mark_bounced,
    mark_complained,
    record_returned,
    token_holder,
    unsubscribe,
)
from newsletter.tokens import TokenData, TokenPurpose, TokenSigner

K = InboundKind

# The event written for each attributed message (state changes add their own event).
EVENT_OF_KIND: dict[InboundKind, EventKind] = {
    K.hard_bounce: EventKind.hard_bounce,
    K.soft_bounce: EventKind.soft_bounce,
    K.delayed: EventKind.bounce_delayed,
    K.complaint: EventKind.complaint,
    K.auto_reply: EventKind.auto_reply,
}


@dataclass(frozen=True)
class Attribution:
    subscriber_id: int
    edition_id: int | None
    by: str  # "verp" or "message-id"


@dataclass(frozen=True)
class Outcome:
    """What one message did: its kind, whom it concerned, and the reader's status after."""

    inbound_id: int
    kind: InboundKind
    subscriber_id: int | None
    status: SubscriberStatus | None


def store(
    session: Session,
    settings: Settings,
    raw: bytes,
    *,
    recipient: str,
    mail_from: str | None,
    channel: str,
    size: int | None = None,
) -> InboundMessage:
    """Keep the raw message before it is parsed (cut at NEWSLETTER_INBOUND_MAX_BYTES)."""
    limit = settings.inbound_max_bytes
    row = InboundMessage(
        received_at=utcnow(),
        channel=channel[:8],
        mail_from=(mail_from or "")[:320] or None,
        recipient=recipient[:320],
        size=size if size is not None else len(raw),
        truncated=len(raw) > limit or (size is not None and size > len(raw)),
        raw=raw[:limit],
        status=InboundStatus.received,
    )
    session.add(row)
    session.flush()
    return row


def process(
    session: Session,
    settings: Settings,
    signer: TokenSigner,
    inbound_id: int,
) -> Outcome:
    """Classify, attribute and apply the policy to one stored message."""
    row = session.get(InboundMessage, inbound_id)
    if row is None:
        raise NotFound(f"no inbound message {inbound_id}")
    address = InboundAddress.of(settings)
    target = address.read(signer, row.recipient) if address else None
    report = bounces.classify(row.raw or b"")
    if target is not None and target.purpose is TokenPurpose.mail_unsubscribe:
        kind = K.unsubscribe
        detail: dict[str, Any] = {"reason": "mail to the List-Unsubscribe address"}
    else:
        kind = report.kind
        detail = report.detail()
    attribution = _attribute(session, signer, address, target, report)
    row.kind = kind
    row.status = InboundStatus.processed
    row.detail = detail
    if attribution is None:
        return Outcome(row.id, kind, None, None)
    row.subscriber_id = attribution.subscriber_id
    row.edition_id = attribution.edition_id
    row.attributed_by = attribution.by
    status = _apply(session, settings, row, kind, report)
    return Outcome(row.id, kind, row.subscriber_id, status)


def mark_failed(session: Session, inbound_id: int, error: str) -> None:
    """Parsing or the policy raised: the raw message stays, with why."""
    session.execute(
        update(InboundMessage)
        .where(InboundMessage.id == inbound_id)
        .values(status=InboundStatus.failed, error=error[:500])
    )


# --------------------------------------------------------------------------- attribution


def _attribute(
    session: Session,
    signer: TokenSigner,
    address: InboundAddress | None,
    target: Target | None,
    report: bounces.Report,
) -> Attribution | None:
    if target is not None and target.token is not None:
        return _holder(session, target.token)
    if address is not None:
        for path in report.return_paths:
            found = address.read(signer, path)
            if found is not None and found.purpose is TokenPurpose.return_path and found.token:
                return _holder(session, found.token)
    return _by_message_id(session, signer, report)


def _holder(session: Session, token: TokenData) -> Attribution | None:
    """The reader a token names, while the subscription it was made for still exists (an
    erased reader, or one who subscribed afresh since, is nobody: the link salt differs)."""
    try:
        subscriber = token_holder(session, token)
    except TokenError:
        return None
    return Attribution(subscriber.id, token.edition_id, "verp")


def _by_message_id(
    session: Session, signer: TokenSigner, report: bounces.Report
) -> Attribution | None:
    """A Message-ID of one of our emails, and the report names its reader (a forwarded copy
    that bounces names someone else: it attributes nothing)."""
    named = {a.lower() for a in bounces.recipients_of(report)}
    for message_id in report.message_ids:
        token = read_message_id(signer, message_id)
        if token is None:
            legacy = _by_legacy_id(session, message_id, named)
            if legacy is not None:
                return legacy
            continue
        try:
            reader = token_holder(session, token)
        except TokenError:  # erased, or subscribed afresh since: the link salt differs
            continue
        if reader.email.lower() in named or (report.kind in _ID_ALONE and not named):
            return Attribution(reader.id, token.edition_id, "message-id")
    return None


# Feedback loops usually redact the recipient, and auto-replies name none: there a token
# Message-ID alone attributes, as it is sealed per reader (message_ids.py): it can only be
# quoted by its recipient or whom they forwarded it to, never guessed from one's own.
_ID_ALONE = (K.complaint, K.auto_reply)


def _by_legacy_id(session: Session, message_id: str, named: set[str]) -> Attribution | None:
    """A Message-ID of mail sent before the token ones, <delivery id.edition tag@host>, as
    stored with its delivery: only with that delivery's reader named, never by the id alone
    (every reader of the edition knows its tag, and delivery ids count up from 1)."""
    delivery_id = legacy_delivery_id(message_id)
    if delivery_id is None or not named:
        return None
    row = session.execute(
        select(Delivery.subscriber_id, Delivery.edition_id, Subscriber.email)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.id == delivery_id, Delivery.message_id == message_id)
    ).first()
    if row is None or row.email.lower() not in named:
        return None
    return Attribution(row.subscriber_id, row.edition_id, "message-id")


# --------------------------------------------------------------------------- policy


def _apply(
    session: Session,
    settings: Settings,
    row: InboundMessage,
    kind: InboundKind,
    report: bounces.Report,
) -> SubscriberStatus | None:
    subscriber_id = row.subscriber_id
    assert subscriber_id is not None
    edition_id = row.edition_id
    link = {"inbound_id": row.id}
    if kind is K.unsubscribe:
        return unsubscribe(
            session, subscriber_id, source=EventSource.mailto, edition_id=edition_id
        ).status
    event_kind = EVENT_OF_KIND.get(kind)
    if event_kind is not None:
        record_returned(
            session,
            subscriber_id,
            event_kind,
            edition_id=edition_id,
            detail={**link, **report.detail()},
        )
    if kind is K.complaint:
        return mark_complained(
            session, subscriber_id, edition_id=edition_id, source=EventSource.bounce, detail=link
        ).status
    if kind is K.hard_bounce:
        mark_bounced(session, [subscriber_id], edition_id=edition_id, detail=link)
    elif kind is K.soft_bounce:
        count = soft_bounces_since_good_delivery(session, settings, subscriber_id, row.received_at)
        if count >= settings.soft_bounce_limit:
            mark_bounced(
                session,
                [subscriber_id],
                edition_id=edition_id,
                detail={**link, "soft_bounces": count},
            )
    session.flush()
    return session.scalar(select(Subscriber.status).where(Subscriber.id == subscriber_id))


def soft_bounces_since_good_delivery(
    session: Session, settings: Settings, subscriber_id: int, now: datetime
) -> int:
    """Soft bounces within SOFT_BOUNCE_DAYS, counted since the last delivery that went out and
    did not come back (one per edition: several notices for one message count once)."""
    since = now - timedelta(days=settings.soft_bounce_days)
    returned = select(InboundMessage.edition_id).where(
        InboundMessage.subscriber_id == subscriber_id,
        InboundMessage.kind.in_([K.soft_bounce, K.hard_bounce]),
        InboundMessage.edition_id.is_not(None),
    )
    last_good = session.scalar(
        select(func.max(Delivery.sent_at)).where(
            Delivery.subscriber_id == subscriber_id,
            Delivery.status == DeliveryStatus.sent,
            Delivery.sent_at >= since,
            Delivery.edition_id.not_in(returned),
        )
    )
    if last_good is not None and last_good > since:
        since = last_good
    # NULL editions (a confirmation email) count one per message.
    one_per_edition = func.coalesce(InboundMessage.edition_id, -InboundMessage.id)
    return int(
        session.scalar(
            select(func.count(func.distinct(one_per_edition))).where(
                InboundMessage.subscriber_id == subscriber_id,
                InboundMessage.kind == K.soft_bounce,
                InboundMessage.received_at >= since,
            )
        )
        or 0
    )


def purge_raw(session: Session, settings: Settings, *, now: datetime | None = None) -> int:
    """Erase the raw bytes of messages older than NEWSLETTER_INBOUND_KEEP_DAYS (the row and
    its classification stay for the rates and the bounces page)."""
    cutoff = (now or utcnow()) - timedelta(days=settings.inbound_keep_days)
    result = session.execute(
        update(InboundMessage)
        .where(InboundMessage.received_at < cutoff, InboundMessage.raw.is_not(None))
        .values(raw=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

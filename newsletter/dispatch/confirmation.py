"""The double opt-in email, sent through the transport by the "send_confirmation" job; its
state is in the subscriber's row, so the tick retries what could not leave."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid, parseaddr
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from newsletter import links
from newsletter.config import Settings
from newsletter.dispatch.store import as_utc
from newsletter.models import Subscriber, SubscriberStatus, utcnow
from newsletter.returnpath import InboundAddress
from newsletter.transport import Outcome, SendResult, Transport

if TYPE_CHECKING:
    from newsletter.dispatch.handoff import Jobs

log = logging.getLogger(__name__)

# The confirmation's retry policy: in the database, driven by the tick. The first retry
# after this many seconds, doubled each time, at most RETRY_CAP; given up when the request
# is older than the link's lifetime (tokens.CONFIRM_MAX_AGE).
RETRY_FIRST = 30.0
RETRY_CAP = 3600.0
SC = Subscriber.__table__.c


def requested_at() -> Any:
    """When the reader asked: the consent proof's time, else the row's."""
    return func.coalesce(SC.consent_at, SC.created_at)


def send_confirmation(
    sessions: sessionmaker[Session],
    settings: Settings,
    transport: Transport,
    subscriber_id: int,
    *,
    now: Callable[[], datetime] = utcnow,
) -> SendResult | None:
    """Mail the confirm link to a pending subscriber (None when there is nobody to confirm, or
    their request's confirmation has left already: a job run twice, or queued again by the
    tick while slow, mails once), and record how it went: sent, or when the tick tries again
    (never raises for the relay)."""
    from newsletter.messages import confirmation_message
    from newsletter.tokens import TokenPurpose, TokenSigner

    with sessions.begin() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if (
            subscriber is None
            or subscriber.status is not SubscriberStatus.pending
            or subscriber.confirm_sent_at is not None
        ):
            return None
        token = TokenSigner(settings.secret_key).make(
            TokenPurpose.confirm, subscriber.id, salt=subscriber.link_salt
        )
        domain = parseaddr(settings.from_address)[1].rpartition("@")[2] or settings.base_host
        email = subscriber.email
        data = confirmation_message(
            settings,
            lang=subscriber.primary_language,
            email=email,
            confirm_url=links.confirm_url(settings.base_url, token),
            message_id=make_msgid("confirm", domain=domain),
        )
        # With an inbound address, a bounce of the confirmation comes back to a VERP sender.
        inbound = InboundAddress.of(settings)
        sender = (
            inbound.return_path(
                TokenSigner(settings.secret_key), subscriber.id, salt=subscriber.link_salt
            )
            if inbound
            else None
        )
    data = transport.frame(data)
    with transport:
        result = transport.send(parseaddr(settings.from_address)[1], [(email, data, sender)])[0]
    with sessions.begin() as session:
        _record(session, subscriber_id, result, now())
    if result.outcome is not Outcome.ok:
        log.warning("confirmation to subscriber %d not sent: %s", subscriber_id, result.reply)
    return result


def _record(session: Session, subscriber_id: int, result: SendResult, at: datetime) -> None:
    table = Subscriber.__table__
    if result.outcome is Outcome.ok:
        values: dict[str, Any] = {
            "confirm_sent_at": at,
            "confirm_error": None,
            "confirm_due_at": None,
        }
    elif result.outcome is Outcome.permanent and not result.blocked:
        # The address itself is refused: trying again would be mailing a wall.
        values = {"confirm_error": result.reply[:500], "confirm_due_at": None}
    else:
        attempts = session.scalar(select(SC.confirm_attempts).where(SC.id == subscriber_id)) or 0
        wait = min(RETRY_CAP, RETRY_FIRST * 2**attempts)
        values = {
            "confirm_attempts": attempts + 1,
            "confirm_error": result.reply[:500],
            "confirm_due_at": at + timedelta(seconds=wait),
        }
    # The row's updated_at is the reader's, not the mailer's: left as it was.
    session.execute(
        update(table).where(SC.id == subscriber_id).values(**values, updated_at=SC.updated_at)
    )


def resend_due(session: Session, settings: Settings, jobs: Jobs, now: datetime) -> int:
    """The tick's part: confirmations whose job was lost, or whose retry is due, are queued
    again while the link can still be used; each is leased for a stale period so that the
    next tick does not queue it twice."""
    grace = timedelta(seconds=settings.stale_after)
    due = _due(now, grace)
    ids = list(session.scalars(select(SC.id).where(due).order_by(SC.id).limit(500)))
    if not ids:
        return 0
    session.execute(
        update(Subscriber.__table__)
        .where(SC.id.in_(ids))
        .values(confirm_due_at=now + grace, updated_at=SC.updated_at)
    )
    for subscriber_id in ids:
        jobs.enqueue(session, "send_confirmation", subscriber_id=subscriber_id)
    return len(ids)


def _due(now: datetime, grace: timedelta) -> Any:
    from newsletter.tokens import CONFIRM_MAX_AGE

    asked = requested_at()
    return and_(
        SC.status == SubscriberStatus.pending.value,
        SC.confirm_sent_at.is_(None),
        asked > now - CONFIRM_MAX_AGE,
        or_(
            and_(SC.confirm_due_at.is_(None), SC.confirm_error.is_(None), asked < now - grace),
            SC.confirm_due_at <= now,
        ),
    )


@dataclass(frozen=True)
class LateConfirmation:
    subscriber_id: int
    email: str
    requested_at: datetime
    attempts: int
    error: str | None
    next_try: datetime | None  # None: given up (refused address, or the link expired)


def late_confirmations(
    session: Session, settings: Settings, now: datetime | None = None, limit: int = 100
) -> list[LateConfirmation]:
    """Pending readers whose confirmation has not left a stale period after they asked."""
    from newsletter.tokens import CONFIRM_MAX_AGE

    now = now or utcnow()
    asked = requested_at()
    rows = session.execute(
        select(SC.id, SC.email, asked, SC.confirm_attempts, SC.confirm_error, SC.confirm_due_at)
        .where(
            SC.status == SubscriberStatus.pending.value,
            SC.confirm_sent_at.is_(None),
            asked < now - timedelta(seconds=settings.stale_after),
        )
        .order_by(asked.desc())
        .limit(limit)
    )
    out = []
    for sid, email, asked_at, attempts, error, due in rows:
        when = as_utc(asked_at)
        if when is None:  # the query excludes it; this keeps the type honest
            continue
        expired = when <= now - CONFIRM_MAX_AGE
        out.append(
            LateConfirmation(sid, email, when, attempts, error, None if expired else as_utc(due))
        )
    return out

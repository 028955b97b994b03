"""The double opt-in email, sent through the transport by the "send_confirmation" job."""

from __future__ import annotations

import re
from email.utils import make_msgid, parseaddr

from sqlalchemy.orm import Session

from newsletter import links
from newsletter.config import Settings
from newsletter.dispatch.sending import signer_for
from newsletter.errors import TemporaryDeliveryError
from newsletter.models import Subscriber, SubscriberStatus
from newsletter.transport import Outcome, SendResult, Transport

_LINE_START_DOT = re.compile(rb"(?m)^\.")


def dot_stuff(data: bytes) -> bytes:
    """SMTP DATA transparency (RFC 5321 4.5.2), ending with CRLF."""
    stuffed = _LINE_START_DOT.sub(b"..", data)
    return stuffed if stuffed.endswith(b"\r\n") else stuffed + b"\r\n"


def send_confirmation(
    session: Session, settings: Settings, transport: Transport, subscriber_id: int
) -> SendResult | None:
    """Mail the confirm link to a pending subscriber (None when there is nobody to confirm).

    Raises TemporaryDeliveryError so that the task retries later.
    """
    from newsletter.messages import confirmation_message
    from newsletter.tokens import TokenPurpose

    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.status is not SubscriberStatus.pending:
        return None
    token = signer_for(settings.secret_key).make(
        TokenPurpose.confirm, subscriber.id, salt=subscriber.link_salt
    )
    domain = parseaddr(settings.from_address)[1].rpartition("@")[2] or settings.base_host
    data = confirmation_message(
        settings,
        lang=subscriber.primary_language,
        email=subscriber.email,
        confirm_url=links.confirm_url(settings.base_url, token),
        message_id=make_msgid("confirm", domain=domain),
    )
    if transport.dot_stuffed:
        data = dot_stuff(data)
    with transport:
        result = transport.send(parseaddr(settings.from_address)[1], [(subscriber.email, data)])[0]
    if result.outcome is Outcome.temporary or result.blocked:  # blocked: not the reader's fault
        raise TemporaryDeliveryError(f"confirmation to {subscriber.email}: {result.reply}")
    return result

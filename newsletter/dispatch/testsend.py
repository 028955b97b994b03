"""`send --test-to`: one copy of each variant to a staff address; no delivery is recorded."""

from __future__ import annotations

from collections.abc import Iterable
from email.utils import make_msgid, parseaddr

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter import links
from newsletter.config import Settings
from newsletter.errors import DeliveryError, NotFound, ValidationError
from newsletter.models import Edition, Subscriber, SubscriberStatus
from newsletter.transport import Outcome, Transport


def send_test(
    session: Session,
    settings: Settings,
    week: str,
    to_email: str,
    transport: Transport,
    *,
    language_sets: Iterable[tuple[str, ...]] | None = None,
    fallback_language: str | None = None,
) -> list[tuple[str, ...]]:
    """Send each language set some active subscriber holds (or those asked) to `to_email`."""
    from newsletter.messages import Recipient, prepare_edition_messages
    from newsletter.tokens import TEST_SUBSCRIBER_ID, TokenPurpose, TokenSigner

    address = parseaddr(to_email)[1]
    if "@" not in address:
        raise ValidationError(f"not an email address: {to_email!r}")
    edition = session.scalar(select(Edition).where(Edition.week == week.strip().upper()))
    if edition is None:
        raise NotFound(f"no edition for week {week}")
    if language_sets is None:
        held = session.scalars(
            select(Subscriber.languages)
            .distinct()
            .where(Subscriber.status == SubscriberStatus.active)
        ).all()
        sets = sorted(tuple(s.split(",")) for s in held) or [(lang,) for lang in edition.languages]
    else:
        sets = sorted(set(map(tuple, language_sets)))
    templates = prepare_edition_messages(
        session,
        settings,
        edition,
        sets,
        fallback_language=fallback_language or edition.fallback_language,
        test=True,
    )
    # A token for no subscriber: its links open a page saying it was a test, and act on nobody.
    token = TokenSigner(settings.secret_key).make(
        TokenPurpose.unsubscribe, TEST_SUBSCRIBER_ID, edition.id, salt=0
    )
    domain = parseaddr(settings.from_address)[1].rpartition("@")[2] or settings.base_host
    batch = []
    for langs in sets:
        recipient = Recipient(
            email=address,
            name=None,
            unsubscribe_url=links.unsubscribe_url(settings.base_url, token),
            message_id=make_msgid("test", domain=domain),
        )
        template = templates[langs]
        render = template.render_smtp if transport.dot_stuffed else template.render
        batch.append((address, render(recipient)))
    with transport:
        results = transport.send(parseaddr(settings.from_address)[1], batch)
    refused = [r for r in results if r.outcome is not Outcome.ok]
    if refused:
        raise DeliveryError(f"test copy to {address} not sent: {refused[0].reply}")
    return sets

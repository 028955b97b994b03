"""Inbound fixtures: settings with an inbound address, readers with sent deliveries, and the
report fixtures (written from the RFCs' examples and the formats of Postfix, Exim, Microsoft
and Gmail) filled in for one delivery."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.message_ids import message_id_domain, message_id_maker
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
    utcnow,
)
from newsletter.returnpath import InboundAddress
from newsletter.subscriptions import add_subscriber
from newsletter.tokens import TokenSigner

FIXTURES = Path(__file__).parent / "fixtures"
INBOUND = "inbound@news.example.org"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings with NEWSLETTER_INBOUND_ADDRESS set."""
    return replace(settings, inbound_address=INBOUND)


@dataclass(frozen=True)
class Sent:
    """One reader and the delivery of one edition that went out to them."""

    subscriber_id: int
    email: str
    edition_id: int
    delivery_id: int
    message_id: str
    return_path: str  # the VERP envelope sender it went out with
    mailto: str  # its List-Unsubscribe mailto address

    def fill(self, fixture: str, **overrides: str) -> bytes:
        """A report fixture about this delivery, CRLF line ends, as a server hands it over."""
        values = {
            "to": INBOUND,
            "rcpt": self.email,
            "rcpt_local": self.email.split("@")[0],
            "return_path": self.return_path,
            "message_id": self.message_id,
        }
        values.update(overrides)
        text = (FIXTURES / fixture).read_text() % values
        return text.replace("\n", "\r\n").encode("utf-8")


class Readers:
    """Makes editions, readers and sent deliveries in the test database."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.signer = TokenSigner(settings.secret_key)
        address = InboundAddress.of(settings)
        assert address is not None
        self.address = address

    def edition(self, week: str) -> int:
        edition = Edition(week=week, status=EditionStatus.sent, languages=["be"])
        self.session.add(edition)
        self.session.flush()
        return edition.id

    def reader(self, email: str) -> int:
        return add_subscriber(
            self.session, self.settings.secret_key, email, "be", confirmed=True
        ).id

    def sent(
        self,
        subscriber_id: int,
        edition_id: int,
        *,
        sent_at: datetime | None = None,
        legacy: bool = False,
    ) -> Sent:
        """A sent delivery, with the Message-ID the sender gives it, or (legacy) as one sent
        before Message-IDs were tokens: <delivery id.edition tag@host>, stored with it."""
        delivery = Delivery(
            edition_id=edition_id,
            subscriber_id=subscriber_id,
            status=DeliveryStatus.sent,
            sent_at=sent_at or utcnow(),
            attempts=1,
        )
        self.session.add(delivery)
        self.session.flush()
        reader = self.session.get_one(Subscriber, subscriber_id)
        email, salt = reader.email, reader.link_salt
        if legacy:
            delivery.message_id = f"<{delivery.id}{legacy_suffix(self.settings, edition_id)}"
            self.session.flush()
            message_id = delivery.message_id
        else:
            edition = self.session.get_one(Edition, edition_id)
            make = message_id_maker(
                self.signer, message_id_domain(self.settings), edition_id, edition.created_at
            )
            message_id = make(subscriber_id, salt)
        return Sent(
            subscriber_id=subscriber_id,
            email=email,
            edition_id=edition_id,
            delivery_id=delivery.id,
            message_id=message_id,
            return_path=self.address.return_path(self.signer, subscriber_id, edition_id, salt=salt),
            mailto=self.address.unsubscribe_address(
                self.signer, subscriber_id, edition_id, salt=salt
            ),
        )

    def one(
        self, email: str = "reader@example.net", week: str = "2020-W05", *, legacy: bool = False
    ) -> Sent:
        return self.sent(self.reader(email), self.edition(week), legacy=legacy)


def legacy_suffix(settings: Settings, edition_id: int) -> str:
    """What followed the delivery id in a Message-ID before they were tokens: a keyed tag per
    edition, the same for every reader of it."""
    tag = hmac.new(settings.secret_key.encode(), f"edition:{edition_id}".encode(), hashlib.sha256)
    return f".{tag.hexdigest()[:12]}@news.example.org>"


@pytest.fixture
def readers(session: Session, settings: Settings) -> Readers:
    return Readers(session, settings)

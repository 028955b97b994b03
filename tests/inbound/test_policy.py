"""The bounce policy on SQLite and PostgreSQL: raw storage, attribution by VERP token or by
Message-ID + recipient, hard and soft bounces, complaints, auto-replies, mailed unsubscribes,
reactivation, and forged reports that must attribute nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter import bounce_policy
from newsletter.config import Settings
from newsletter.errors import IllegalTransition
from newsletter.models import (
    Event,
    EventSource,
    InboundKind,
    InboundMessage,
    InboundStatus,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from newsletter.subscriptions import forget, reactivate
from newsletter.tokens import TokenPurpose, TokenSigner, make_address_token

S = SubscriberStatus
K = InboundKind
INBOUND = "inbound@news.example.org"


def take(  # type: ignore[no-untyped-def]
    session: Session,
    settings: Settings,
    raw: bytes,
    recipient: str = INBOUND,
    at: datetime | None = None,
):
    """Store and process one message, as received at `at` (default now)."""
    row = bounce_policy.store(
        session, settings, raw, recipient=recipient, mail_from="", channel="smtp"
    )
    if at is not None:
        row.received_at = at
    return bounce_policy.process(session, settings, TokenSigner(settings.secret_key), row.id)


def status(session: Session, subscriber_id: int) -> SubscriberStatus:
    return session.scalars(select(Subscriber.status).where(Subscriber.id == subscriber_id)).one()


def kinds(session: Session, subscriber_id: int) -> list[tuple[str, str]]:
    rows = session.scalars(
        select(Event).where(Event.subscriber_id == subscriber_id).order_by(Event.id)
    )
    return [(e.kind, e.source.value) for e in rows]


def test_a_hard_bounce_to_the_verp_address_marks_the_reader_bounced(
    session, settings, readers
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a Postfix DSN comes to the delivery's return path: bounced at once, logged."""
    sent = readers.one()
    outcome = take(session, settings, sent.fill("postfix_hard.eml"), recipient=sent.return_path)
    assert (outcome.kind, outcome.subscriber_id, outcome.status) == (
        K.hard_bounce,
        sent.subscriber_id,
        S.bounced,
    )
    row = session.get(InboundMessage, outcome.inbound_id)
    assert row.attributed_by == "verp" and row.edition_id == sent.edition_id
    assert row.raw.startswith(b"Return-Path: <>")
    assert kinds(session, sent.subscriber_id)[-2:] == [
        ("hard_bounce", "bounce"),
        ("bounced", "bounce"),
    ]
    bounced = session.scalars(select(Event).where(Event.kind == "bounced")).one()
    assert bounced.detail == {"inbound_id": row.id} and bounced.edition_id == sent.edition_id


@pytest.mark.parametrize("legacy", [False, True], ids=["token", "legacy"])
@pytest.mark.parametrize(
    "fixture",
    ["rfc3464_permanent.eml", "microsoft_hard.eml", "gmail_hard.eml", "exim_hard.eml"],
)
def test_a_bounce_without_verp_is_attributed_by_message_id_and_recipient(  # type: ignore[no-untyped-def]
    session, settings, readers, fixture, legacy
) -> None:
    """Scenario: a bounce sent to the bare address (forwarded, or to From) with no return
    path inside: our Message-ID (a token, or the stored id of mail sent before tokens) plus
    the reader's address as the failed recipient."""
    sent = readers.one(legacy=legacy)
    raw = sent.fill(fixture, return_path="digest@news.example.org")
    outcome = take(session, settings, raw)
    assert outcome.subscriber_id == sent.subscriber_id
    assert status(session, sent.subscriber_id) is S.bounced
    assert session.get(InboundMessage, outcome.inbound_id).attributed_by == "message-id"


def test_a_return_path_quoted_in_the_report_attributes_it(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a bounce to the bare address quotes the original Return-Path: our token."""
    sent = readers.one()
    outcome = take(session, settings, sent.fill("postfix_hard.eml", message_id="<x@y.org>"))
    assert outcome.subscriber_id == sent.subscriber_id
    assert session.get(InboundMessage, outcome.inbound_id).attributed_by == "verp"


@pytest.mark.parametrize("legacy", [False, True], ids=["token", "legacy"])
def test_a_forwarded_copy_that_bounces_attributes_nobody(
    session, settings, readers, legacy
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: our Message-ID, but the failed recipient is someone the reader forwarded to."""
    sent = readers.one(legacy=legacy)
    raw = sent.fill("gmail_hard.eml", rcpt="friend@example.com", return_path="x@example.com")
    outcome = take(session, settings, raw)
    assert outcome.subscriber_id is None
    assert status(session, sent.subscriber_id) is S.active
    assert session.get(InboundMessage, outcome.inbound_id).kind is K.hard_bounce


@pytest.mark.parametrize(
    "message_id",
    [
        "<{id}.000000000000@news.example.org>",  # the keyed tag is wrong
        "<{other}{tail}",  # another delivery's id with this one's tag
        "<{id}\uff0e{tag}@news.example.org>",  # a Unicode look-alike of the dot
    ],
)
def test_a_forged_legacy_message_id_attributes_nobody(
    session, settings, readers, message_id
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a forged DSN naming the victim, with a guessed or altered Message-ID of the
    format before tokens, moves nobody (tokens: test_message_ids)."""
    victim = readers.one("victim@example.net", legacy=True)
    other = readers.sent(readers.reader("other@example.net"), victim.edition_id, legacy=True)
    tail = victim.message_id.split(".", 1)[1]
    forged = message_id.format(
        id=victim.delivery_id, other=other.delivery_id, tail="." + tail, tag=tail.split("@")[0]
    )
    raw = victim.fill("gmail_hard.eml", message_id=forged, return_path="x@example.com")
    outcome = take(session, settings, raw)
    assert outcome.subscriber_id is None
    assert status(session, victim.subscriber_id) is S.active


def test_a_forged_token_in_the_report_attributes_nobody(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a report quoting an altered token, or a mailto token as return path."""
    sent = readers.one()
    altered = sent.return_path.replace("+", "+a", 1)
    for path in (altered, sent.mailto):
        raw = sent.fill("postfix_hard.eml", return_path=path, message_id="<x@y.org>")
        assert take(session, settings, raw).subscriber_id is None
    assert status(session, sent.subscriber_id) is S.active


def test_a_complaint_marks_the_reader_complained(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: an ARF abuse report: complained, never mailed again without a new opt-in."""
    sent = readers.one()
    outcome = take(session, settings, sent.fill("arf_abuse.eml"))
    assert (outcome.kind, outcome.status) == (K.complaint, S.complained)
    assert kinds(session, sent.subscriber_id)[-2:] == [
        ("complaint", "bounce"),
        ("complained", "bounce"),
    ]
    with pytest.raises(IllegalTransition):
        reactivate(session, sent.subscriber_id, staff_name="ada")


def test_a_complaint_with_a_redacted_recipient_is_attributed_by_message_id(
    session, settings, readers
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a feedback loop that strips the recipient and the return path."""
    sent = readers.one()
    raw = sent.fill("arf_abuse.eml", return_path="x@example.com").replace(
        f"Original-Rcpt-To: <{sent.email}>\r\n".encode(), b""
    )
    assert take(session, settings, raw).status is S.complained


def test_a_redacted_complaint_with_a_legacy_message_id_attributes_nobody(
    session, settings, readers
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: as above, about mail sent before Message-IDs were tokens: its id is a
    sequential delivery id and a tag every reader of the edition knows, so alone it is
    nobody's; named with its reader it is theirs."""
    sent = readers.one(legacy=True)
    raw = sent.fill("arf_abuse.eml", return_path="x@example.com")
    redacted = raw.replace(f"Original-Rcpt-To: <{sent.email}>\r\n".encode(), b"")
    assert take(session, settings, redacted).subscriber_id is None
    assert status(session, sent.subscriber_id) is S.active
    assert take(session, settings, raw).status is S.complained


def test_an_auto_reply_is_logged_and_changes_nothing(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a vacation notice to the return path: an auto_reply event, still active."""
    sent = readers.one()
    outcome = take(session, settings, sent.fill("autoreply.eml"), recipient=sent.return_path)
    assert (outcome.kind, outcome.status) == (K.auto_reply, S.active)
    assert kinds(session, sent.subscriber_id)[-1] == ("auto_reply", "bounce")


def test_mail_to_the_unsubscribe_address_unsubscribes(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: any mail to the List-Unsubscribe mailto address unsubscribes, source mailto."""
    sent = readers.one()
    outcome = take(session, settings, sent.fill("unsubscribe.eml"), recipient=sent.mailto.upper())
    assert (outcome.kind, outcome.status) == (K.unsubscribe, S.unsubscribed)
    event = session.scalars(select(Event).where(Event.kind == "unsubscribed")).one()
    assert (event.source, event.edition_id) == (EventSource.mailto, sent.edition_id)


def test_an_unsubscribe_mail_to_the_bare_address_does_nothing(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: "unsubscribe" from a forgeable From address, without a token: kept, no change."""
    sent = readers.one()
    outcome = take(session, settings, sent.fill("unsubscribe.eml"))
    assert (outcome.kind, outcome.subscriber_id) == (K.unknown, None)
    assert status(session, sent.subscriber_id) is S.active


def test_soft_bounces_count_only_without_a_good_delivery_between(
    session, settings, readers
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: three soft bounces in a row make the reader bounced; a delivery that did not
    come back in between starts the count again; a second notice for one edition counts once."""
    reader = readers.reader("soft@example.net")
    now = utcnow()

    def week(i: int):  # type: ignore[no-untyped-def]
        """Edition i goes out 20 - 4i days ago; a soft bounce of it arrives a day later."""
        sent = readers.sent(
            reader, readers.edition(f"2020-W0{i}"), sent_at=now - timedelta(days=20 - 4 * i)
        )
        return sent, now - timedelta(days=19 - 4 * i)

    def soft(sent, at):  # type: ignore[no-untyped-def]
        return take(session, settings, sent.fill("postfix_soft.eml"), sent.return_path, at)

    sent, at = week(0)
    soft(sent, at)
    soft(sent, at + timedelta(hours=1))  # a second notice for the same message
    assert bounce_policy.soft_bounces_since_good_delivery(session, settings, reader, at) == 1
    week(1)  # went out, and nothing came back: the count starts again after it
    for i in (2, 3):
        soft(*week(i))
    assert status(session, reader) is S.active
    assert soft(*week(4)).status is S.bounced
    bounced = session.scalars(select(Event).where(Event.kind == "bounced")).one()
    assert bounced.detail["soft_bounces"] == 3


def test_the_soft_bounce_limit_and_window_are_configurable(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: NEWSLETTER_SOFT_BOUNCE_LIMIT=1 makes one soft bounce enough."""
    from dataclasses import replace

    sent = readers.one()
    outcome = take(
        session,
        replace(settings, soft_bounce_limit=1),
        sent.fill("postfix_soft.eml"),
        sent.return_path,
    )
    assert outcome.status is S.bounced


def test_a_delayed_notice_is_logged_and_changes_nothing(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: "still trying" warnings never count as bounces."""
    sent = readers.one()
    for _ in range(4):
        take(session, settings, sent.fill("postfix_delayed.eml"), recipient=sent.return_path)
    assert status(session, sent.subscriber_id) is S.active
    assert kinds(session, sent.subscriber_id)[-1] == ("bounce_delayed", "bounce")


def test_staff_reactivate_a_false_bounce(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a bounced reader reactivated by staff is active again with consent unchanged."""
    sent = readers.one()
    confirmed = session.get(Subscriber, sent.subscriber_id).confirmed_at
    take(session, settings, sent.fill("postfix_hard.eml"), recipient=sent.return_path)
    reader = reactivate(session, sent.subscriber_id, staff_name="ada")
    assert reader.status is S.active and reader.confirmed_at == confirmed
    assert kinds(session, sent.subscriber_id)[-1] == ("reactivated", "staff")
    with pytest.raises(IllegalTransition):
        reactivate(session, sent.subscriber_id, staff_name="ada")


def test_a_large_message_is_stored_cut_and_marked(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a message over NEWSLETTER_INBOUND_MAX_BYTES is kept cut at the limit."""
    from dataclasses import replace

    small = replace(settings, inbound_max_bytes=4096)
    raw = readers.one().fill("postfix_hard.eml") + b"x" * 10_000
    row = bounce_policy.store(
        session, small, raw, recipient=INBOUND, mail_from=None, channel="imap"
    )
    assert (len(row.raw), row.size, row.truncated) == (4096, len(raw), True)


def test_raw_messages_are_erased_after_the_keep_period(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: after NEWSLETTER_INBOUND_KEEP_DAYS the raw bytes go; the classification stays."""
    sent = readers.one()
    outcome = take(session, settings, sent.fill("postfix_hard.eml"), recipient=sent.return_path)
    assert bounce_policy.purge_raw(session, settings) == 0
    later = utcnow() + timedelta(days=settings.inbound_keep_days + 1)
    assert bounce_policy.purge_raw(session, settings, now=later) == 1
    row = session.get(InboundMessage, outcome.inbound_id)
    session.refresh(row)
    assert row.raw is None and row.kind is K.hard_bounce


def test_erasing_a_reader_erases_what_came_back_about_them(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: forget() takes the reader's bounces (raw messages hold their address) along."""
    sent = readers.one()
    take(session, settings, sent.fill("postfix_hard.eml"), recipient=sent.return_path)
    forget(session, settings.secret_key, sent.subscriber_id)
    session.flush()
    session.expire_all()
    assert session.scalars(select(InboundMessage)).all() == []


def test_a_token_for_an_erased_reader_acts_on_nobody(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a bounce for a reader who was erased since: stored, attributed to nobody."""
    sent = readers.one()
    forget(session, settings.secret_key, sent.subscriber_id)
    outcome = take(session, settings, sent.fill("postfix_hard.eml"), recipient=sent.return_path)
    assert outcome.subscriber_id is None
    assert session.get(InboundMessage, outcome.inbound_id).status is InboundStatus.processed


def test_a_confirmation_bounce_marks_a_pending_reader_bounced(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the confirmation email's return path names the reader without an edition."""
    from newsletter.subscriptions import add_subscriber

    reader = add_subscriber(session, settings.secret_key, "new@example.net", "en")
    pending = reader.id
    token = make_address_token(
        TokenSigner(settings.secret_key), TokenPurpose.return_path, pending, salt=reader.link_salt
    )
    address = f"inbound+{token}@news.example.org"
    raw = readers.one().fill("postfix_hard.eml", rcpt="new@example.net", return_path=address)
    outcome = take(session, settings, raw, recipient=address)
    assert (outcome.subscriber_id, outcome.status) == (pending, S.bounced)


def test_a_token_of_an_earlier_subscription_acts_on_nobody(session, settings, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the reader left and subscribed afresh (a new link salt): mail to the old
    unsubscribe address, a bounce to the old return path, or a complaint quoting the old
    Message-ID alone, moves nobody."""
    from newsletter.subscriptions import subscribe

    sent = readers.one()
    unsubscribe_reader(session, sent.subscriber_id)
    subscribe(session, settings.secret_key, sent.email, "be")
    for recipient, fixture in (
        (sent.mailto, "unsubscribe.eml"),
        (sent.return_path, "postfix_hard.eml"),
    ):
        outcome = take(session, settings, sent.fill(fixture, message_id="<x@y.org>"), recipient)
        assert outcome.subscriber_id is None
    complaint = sent.fill("arf_abuse.eml", return_path="x@example.com")
    redacted = complaint.replace(f"Original-Rcpt-To: <{sent.email}>\r\n".encode(), b"")
    for raw in (complaint, redacted):
        assert take(session, settings, raw).subscriber_id is None
    assert status(session, sent.subscriber_id) is S.pending


def unsubscribe_reader(session: Session, subscriber_id: int) -> None:
    from newsletter.subscriptions import unsubscribe

    unsubscribe(session, subscriber_id, source=EventSource.link)

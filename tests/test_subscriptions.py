"""The subscription rules, on SQLite and PostgreSQL: states, events, consent, erasure."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from newsletter.db import make_session_factory
from newsletter.errors import (
    Conflict,
    IllegalTransition,
    NotFound,
    SubscriptionError,
    ValidationError,
)
from newsletter.models import (
    Delivery,
    Edition,
    Event,
    EventSource,
    Subscriber,
    SubscriberStatus,
    Suppression,
    utcnow,
)
from newsletter.subscriptions import (
    Consent,
    add_subscriber,
    change_languages,
    confirm,
    export_data,
    forget,
    get_by_email,
    import_subscribers,
    ip_hash,
    mark_bounced,
    mark_complained,
    new_subscriber,
    purge_expired_pending,
    subscribe,
    unsubscribe,
)

SECRET = "test-secret-key-not-for-production"
S = SubscriberStatus


def events(session: Session, subscriber_id: int | None) -> list[tuple[str, str, int | None]]:
    rows = session.scalars(
        select(Event).where(Event.subscriber_id == subscriber_id).order_by(Event.id)
    )
    return [(e.kind, e.source.value, e.edition_id) for e in rows]


def active(session: Session, email: str, langs: str = "be") -> Subscriber:
    return add_subscriber(session, SECRET, email, langs, confirmed=True)


def test_subscribe_starts_double_opt_in_with_consent_proof(session: Session) -> None:
    """Scenario: a reader subscribes on the form; they are pending, with a hashed-IP consent."""
    consent = Consent(form="subscribe", page_lang="ru", user_agent="Firefox", ip="203.0.113.7")
    result = subscribe(session, SECRET, " Ales@Example.ORG", "ru,en", name="Ales", consent=consent)
    session.flush()
    sub = result.subscriber
    assert result.needs_confirmation
    assert (sub.email, sub.languages, sub.status, sub.name) == (
        "ales@example.org",
        "ru,en",
        S.pending,
        "Ales",
    )
    assert (sub.consent_form, sub.consent_lang, sub.consent_user_agent) == (
        "subscribe",
        "ru",
        "Firefox",
    )
    assert sub.consent_at is not None
    assert sub.consent_ip_hash == ip_hash(SECRET, "203.0.113.7")
    assert len(sub.consent_ip_hash) == 64 and "203.0.113" not in sub.consent_ip_hash
    assert ip_hash("another key", "203.0.113.7") != sub.consent_ip_hash
    assert events(session, sub.id) == [("subscribed", "form", None)]


def test_subscribe_refuses_bad_input(session: Session) -> None:
    """Scenario: a bad address or language list is a ValidationError and nothing is stored."""
    cases = [
        ("not-an-address", "be", "not a valid email address"),
        ("", "be", "required"),
        ("a@b", "be", "not a valid email address"),
        ("ok@example.org", "de", "unknown language"),
        ("ok@example.org", "", "at least one language"),
        ("ok@example.org", "be,be", "twice"),
        # Mail to a non-ASCII local part needs SMTPUTF8, which we cannot count on.
        ("алеся@example.org", "be", "not a valid email address"),
    ]
    for email, langs, message in cases:
        with pytest.raises(ValidationError, match=message):
            subscribe(session, SECRET, email, langs)
    with pytest.raises(ValidationError, match="control characters"):
        subscribe(session, SECRET, "ok@example.org", "be", name="Evil\x00Name")
    assert session.scalar(select(func.count(Subscriber.id))) == 0


def test_an_internationalised_domain_is_kept_in_its_ascii_form(session: Session) -> None:
    """Scenario: an address at a Cyrillic domain is stored as punycode, so servers accept it."""
    result = subscribe(session, SECRET, "Olga@Пример.РФ", "ru")
    assert result.subscriber.email == "olga@xn--e1afmkfd.xn--p1ai"


def test_an_address_is_one_subscriber_whatever_its_case(session: Session) -> None:
    """Scenario: subscribing twice, in other letter case, keeps one pending row."""
    first = subscribe(session, SECRET, "Olga@example.org", "be")
    second = subscribe(session, SECRET, "OLGA@EXAMPLE.ORG", "be,ru")
    assert first.subscriber.id == second.subscriber.id
    assert second.needs_confirmation and second.subscriber.languages == "be,ru"
    assert session.scalar(select(func.count(Subscriber.id))) == 1


def test_subscribing_an_active_address_changes_nothing(session: Session) -> None:
    """Scenario: a form submission for an active reader neither duplicates nor alters them;
    the audit trail notes it (the write that makes every answer take as long)."""
    sub = active(session, "reader@example.org", "be,en")
    result = subscribe(session, SECRET, "reader@example.org", "ru")
    assert not result.needs_confirmation
    assert result.subscriber.id == sub.id
    assert (sub.status, sub.languages) == (S.active, "be,en")
    assert [k for k, _, _ in events(session, sub.id)] == ["added", "already_active"]


def test_unsubscribed_address_that_subscribes_again_is_pending_again(session: Session) -> None:
    """Scenario: someone who left and comes back must confirm again."""
    sub = active(session, "back@example.org")
    unsubscribe(session, sub.id, source=EventSource.one_click, edition_id=7)
    result = subscribe(session, SECRET, "back@example.org", "en")
    assert result.needs_confirmation
    assert (sub.status, sub.confirmed_at, sub.languages) == (S.pending, None, "en")
    assert events(session, sub.id) == [
        ("added", "staff", None),
        ("unsubscribed", "one-click", 7),
        ("resubscribed", "form", None),
    ]
    confirm(session, sub.id)
    assert sub.status == S.active and sub.confirmed_at is not None


def test_confirm_is_idempotent_and_refuses_illegal_moves(session: Session) -> None:
    """Scenario: confirming twice is fine; confirming a left or complained reader is refused."""
    sub = subscribe(session, SECRET, "c@example.org", "be").subscriber
    confirm(session, sub.id)
    confirm(session, sub.id)
    assert sub.status == S.active
    assert [k for k, _, _ in events(session, sub.id)] == ["subscribed", "confirmed"]
    unsubscribe(session, sub.id, source=EventSource.link)
    with pytest.raises(IllegalTransition):
        confirm(session, sub.id)
    other = active(session, "d@example.org")
    mark_complained(session, other.id, edition_id=3)
    with pytest.raises(IllegalTransition):
        confirm(session, other.id)
    with pytest.raises(NotFound):
        confirm(session, 999_999)


def test_unsubscribe_is_idempotent(session: Session) -> None:
    """Scenario: a second click on the unsubscribe link changes nothing and logs nothing."""
    sub = active(session, "u@example.org")
    unsubscribe(session, sub.id, source=EventSource.one_click, edition_id=4)
    when = sub.unsubscribed_at
    unsubscribe(session, sub.id, source=EventSource.link, edition_id=5)
    assert sub.status == S.unsubscribed and sub.unsubscribed_at == when
    assert events(session, sub.id)[1:] == [("unsubscribed", "one-click", 4)]


def test_change_languages_records_from_and_to(session: Session) -> None:
    """Scenario: a reader switches to English first; the event says what changed."""
    sub = active(session, "l@example.org", "be,en")
    change_languages(session, sub.id, ["en", "be"])
    change_languages(session, sub.id, "en,be")  # no change, no event
    assert sub.languages == "en,be"
    event = session.scalars(select(Event).where(Event.kind == "languages_changed")).one()
    assert event.detail == {"from": "be,en", "to": "en,be"}
    with pytest.raises(ValidationError):
        change_languages(session, sub.id, "fr")


def test_mark_bounced_is_set_based_and_only_moves_mailable_readers(session: Session) -> None:
    """Scenario: dispatch reports hard bounces in bulk; only active/pending readers change."""
    subs = [active(session, f"b{i}@example.org") for i in range(3)]
    left = active(session, "left@example.org")
    unsubscribe(session, left.id, source=EventSource.link)
    session.flush()
    mark_bounced(session, [s.id for s in subs] + [left.id, 424242], edition_id=9, detail="550 no")
    mark_bounced(session, [])
    session.expire_all()
    statuses = dict(session.execute(select(Subscriber.email, Subscriber.status)).all())
    assert statuses == {
        "b0@example.org": S.bounced,
        "b1@example.org": S.bounced,
        "b2@example.org": S.bounced,
        "left@example.org": S.unsubscribed,
    }
    bounce_events = session.scalars(select(Event).where(Event.kind == "bounced")).all()
    assert sorted(e.subscriber_id for e in bounce_events) == sorted(s.id for s in subs)
    assert {(e.source, e.edition_id) for e in bounce_events} == {(EventSource.bounce, 9)}
    assert bounce_events[0].detail == {"error": "550 no"}


def test_add_subscriber_refuses_an_existing_address(session: Session) -> None:
    """Scenario: staff add an address that is already there: Conflict, nothing changes."""
    sub = add_subscriber(session, SECRET, "s@example.org", "ru", name="S")
    assert sub.status == S.pending and sub.confirmed_at is None
    with pytest.raises(Conflict, match="already on the list"):
        add_subscriber(session, SECRET, "S@example.org", "en", confirmed=True)
    assert (sub.languages, sub.status) == ("ru", S.pending)


def test_forget_erases_everything_and_blocks_the_address(session: Session) -> None:
    """Scenario: a reader asks to be forgotten: rows, events, deliveries go; only a hash stays."""
    sub = active(session, "gone@example.org", "be,ru")
    keep = active(session, "keep@example.org")
    edition = Edition(week="2020-W05")
    session.add(edition)
    session.flush()
    session.add_all([Delivery(edition_id=edition.id, subscriber_id=s.id) for s in (sub, keep)])
    session.flush()
    sub_id = sub.id

    forget(session, SECRET, "Gone@Example.org", source=EventSource.staff)
    session.flush()

    assert session.get(Subscriber, sub_id) is None
    assert session.scalar(select(func.count(Event.id)).where(Event.subscriber_id == sub_id)) == 0
    assert session.scalars(select(Delivery.subscriber_id)).all() == [keep.id]
    hashes = session.scalars(select(Suppression.email_hash)).all()
    assert len(hashes) == 1 and "gone" not in hashes[0]
    assert events(session, None) == [("forgotten", "staff", None)]
    with pytest.raises(SubscriptionError, match="forgotten"):
        subscribe(session, SECRET, "gone@example.org", "be")
    with pytest.raises(SubscriptionError):
        add_subscriber(session, SECRET, "GONE@example.org", "be")
    rows = [new_subscriber("gone@example.org", "be"), new_subscriber("new@example.org", "en")]
    result = import_subscribers(session, SECRET, rows)
    assert result.suppressed == {"gone@example.org"} and set(result.added) == {"new@example.org"}
    with pytest.raises(NotFound):
        forget(session, SECRET, "gone@example.org")
    with pytest.raises(NotFound):
        forget(session, SECRET, 987_654)


def test_import_is_bulk_and_skips_existing_addresses(session: Session) -> None:
    """Scenario: a bulk import adds new rows with their status and counts existing ones."""
    active(session, "old@example.org")
    rows = [
        new_subscriber("old@example.org", "be"),
        new_subscriber("p@example.org", "be,en", status="pending"),
        new_subscriber("a@example.org", ["ru"], name="A"),
    ]
    result = import_subscribers(session, SECRET, rows)
    assert result.existing == {"old@example.org"}
    assert set(result.added) == {"p@example.org", "a@example.org"}
    assert result.pending_ids(rows) == [result.added["p@example.org"]]
    a = get_by_email(session, "A@example.org")
    assert a is not None and (a.status, a.name, a.confirmed_at is not None) == (S.active, "A", True)
    assert events(session, a.id) == [("imported", "import", None)]
    with pytest.raises(ValidationError, match="unknown status"):
        new_subscriber("x@example.org", "be", status="deleted")


def test_purge_removes_only_long_expired_pending(session: Session) -> None:
    """Scenario: the scheduler purges pending readers whose link expired over 30 days ago."""
    now = utcnow()
    stale = subscribe(session, SECRET, "stale@example.org", "be").subscriber
    fresh = subscribe(session, SECRET, "fresh@example.org", "be").subscriber
    old_active = active(session, "old@example.org")
    stale.consent_at = now - timedelta(days=40)
    fresh.consent_at = now - timedelta(days=20)
    old_active.created_at = now - timedelta(days=400)
    session.flush()
    assert purge_expired_pending(session, now=now) == 1
    assert {s.email for s in session.scalars(select(Subscriber))} == {
        "fresh@example.org",
        "old@example.org",
    }
    assert purge_expired_pending(session, now=now) == 0


def test_export_data_holds_everything_about_a_person(session: Session) -> None:
    """Scenario: a reader exports their data: profile, consent, events and deliveries."""
    consent = Consent(form="subscribe", page_lang="be", user_agent="UA", ip="2001:db8::1")
    sub = subscribe(session, SECRET, "me@example.org", "be,en", consent=consent).subscriber
    confirm(session, sub.id)
    edition = Edition(week="2020-W05")
    session.add(edition)
    session.flush()
    session.add(Delivery(edition_id=edition.id, subscriber_id=sub.id))
    session.flush()
    data = export_data(session, sub.id)
    assert data["email"] == "me@example.org" and data["languages"] == ["be", "en"]
    assert data["status"] == "active" and data["confirmed_at"]
    assert data["consent"]["ip_keyed_hash"] == ip_hash(SECRET, "2001:db8:0::1")
    assert [e["kind"] for e in data["events"]] == ["subscribed", "confirmed"]
    assert data["deliveries"] == [{"edition": "2020-W05", "status": "queued", "sent_at": None}]


def test_two_concurrent_subscribes_leave_one_subscriber(engine: Engine) -> None:
    """Scenario: two requests subscribe one address at once; one row, no error for either."""
    factory = make_session_factory(engine)
    first = factory()
    result_a = subscribe(first, SECRET, "race@example.org", "be")
    first.flush()  # row inserted, not yet committed: the second insert must wait on it
    outcome: dict[str, object] = {}

    def second() -> None:
        with factory() as session:
            try:
                outcome["result"] = subscribe(session, SECRET, "Race@example.org", "be,en")
                session.commit()
            except Exception as exc:  # the test reports it below
                outcome["error"] = exc

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive()  # blocked on the first transaction's row
    first.commit()
    thread.join(timeout=30)
    first.close()
    assert "error" not in outcome, outcome.get("error")
    with factory() as session:
        count = session.scalar(
            select(func.count(Subscriber.id)).where(Subscriber.email == "race@example.org")
        )
        assert count == 1
        assert session.scalar(text("SELECT status FROM subscribers")) == "pending"
    assert result_a.needs_confirmation

"""The subscription rules: every change to a subscriber goes through here and writes an Event.

Functions take a Session and never commit; the caller owns the unit of work. State moves are
checked against one table (TRANSITIONS) in one function (_move), or its set-based twin for
bounces.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.errors import (
    Conflict,
    IllegalTransition,
    NotFound,
    SubscriptionError,
    TokenForTest,
    TokenRevoked,
    ValidationError,
)
from newsletter.languages import format_languages, parse_languages
from newsletter.models import (
    LEGACY_LINK_SALT,
    Delivery,
    Edition,
    Event,
    EventSource,
    Subscriber,
    SubscriberStatus,
    Suppression,
    new_link_salt,
    utcnow,
)
from newsletter.tokens import CONFIRM_MAX_AGE, TEST_SUBSCRIBER_ID, TokenData, keyed_hash

S = SubscriberStatus

# Every legal move; anything else raises IllegalTransition. Re-subscribing always goes
# through `pending` (a new double opt-in), never straight back to `active`.
TRANSITIONS: dict[SubscriberStatus, frozenset[SubscriberStatus]] = {
    S.pending: frozenset({S.active, S.unsubscribed, S.bounced, S.complained}),
    S.active: frozenset({S.unsubscribed, S.bounced, S.complained}),
    S.unsubscribed: frozenset({S.pending, S.complained}),
    # bounced -> active: staff reactivate a reader after a false bounce (consent unchanged).
    S.bounced: frozenset({S.pending, S.active, S.unsubscribed, S.complained}),
    S.complained: frozenset({S.pending}),
}

_CHUNK = 500  # ids per IN (...) list: well under every driver's parameter limit


class EventKind(StrEnum):
    subscribed = "subscribed"
    resubscribed = "resubscribed"
    added = "added"
    imported = "imported"
    confirmed = "confirmed"
    languages_changed = "languages_changed"
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"
    forgotten = "forgotten"
    exported = "exported"
    purged = "purged"
    # The form, for an address that is already active (nothing changed) or erased (refused,
    # nothing about whom): written so that every answer costs the same write (see subscribe).
    already_active = "already_active"
    refused = "refused"
    reactivated = "reactivated"
    # Mail that came back (bounce_policy), one event per message; no state change of its own.
    hard_bounce = "hard_bounce"
    soft_bounce = "soft_bounce"
    bounce_delayed = "bounce_delayed"
    complaint = "complaint"
    auto_reply = "auto_reply"


@dataclass
class Consent:
    """Proof of consent from a form; the IP is stored only as a keyed hash."""

    form: str
    page_lang: str
    user_agent: str | None = None
    ip: str | None = None


@dataclass
class SubscribeResult:
    subscriber: Subscriber
    needs_confirmation: bool


@dataclass(frozen=True)
class NewSubscriber:
    """A validated row for a bulk import."""

    email: str
    languages: tuple[str, ...]
    name: str | None = None
    status: SubscriberStatus = S.active
    subscribed_at: datetime | None = None
    confirmed_at: datetime | None = None


@dataclass
class ImportResult:
    added: dict[str, int] = field(default_factory=dict)  # email -> new subscriber id
    existing: set[str] = field(default_factory=set)
    suppressed: set[str] = field(default_factory=set)

    def pending_ids(self, rows: Iterable[NewSubscriber]) -> list[int]:
        return [
            self.added[r.email] for r in rows if r.status == S.pending and r.email in self.added
        ]


# --- validation -------------------------------------------------------------------------


def normalise_email(email: str) -> str:
    """The stored form of an address (syntax checked, no DNS), or ValidationError."""
    text = (email or "").strip()
    if not text:
        raise ValidationError("an email address is required")
    try:
        # No SMTPUTF8: such mail could not be delivered through most servers; IDN
        # domains are kept in their ASCII (punycode) form, which every server accepts.
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValidationError(f"not a valid email address: {text!r} ({exc})") from exc
    normalised = (result.ascii_email or result.normalized).lower()
    if len(normalised) > 320:
        raise ValidationError("the email address is too long")
    return normalised


# Characters that change how text around them is shown: bidi overrides and isolates, and
# line or paragraph separators. A name never needs them; they can make it read as other text.
_HIDDEN = re.compile("[\u202a-\u202e\u2066-\u2069\u2028\u2029]")

FORM_NAME_MAX = 64
# Besides letters and combining marks, what names are written with: spaces, full stops,
# hyphens and apostrophes (Belarusian writes U+02BC or U+2019 in Мар'яна).
_NAME_MARKS = frozenset(" .-'\u2010\u2011\u2019\u02bc")


def clean_name(name: str | None) -> str | None:
    """A display name without control characters (it ends up in the To: header)."""
    if name is None or not name.strip():
        return None
    name = " ".join(name.split())
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in name) or _HIDDEN.search(name):
        raise ValidationError("the name contains control characters")
    if len(name) > 200:
        raise ValidationError("the name is longer than 200 characters")
    return name


def form_name(name: str | None) -> str | None:
    """A name typed by a stranger on the public form, or ValidationError.

    At most 64 characters of letters, combining marks and the marks of _NAME_MARKS, checked
    in NFKC form (full-width and other compatibility spellings fold to what they look like);
    a full stop is followed by a space or ends the name. So no link, address, digit, colon,
    slash or @ in any spelling: a name cannot carry a URL or read as an instruction with one.
    """
    name = clean_name(name)
    if name is None:
        return None
    if len(name) > FORM_NAME_MAX:
        raise ValidationError(f"the name is longer than {FORM_NAME_MAX} characters")
    folded = unicodedata.normalize("NFKC", name)
    for char in folded:
        category = unicodedata.category(char)
        # Modifier letters (Lm) include look-alikes of punctuation (U+A4F8 for a full stop).
        if char not in _NAME_MARKS and (category[0] not in "LM" or category == "Lm"):
            raise ValidationError(f"a name may not contain {char!r}")
    if re.search(r"\.\S", folded):
        raise ValidationError("a full stop in a name is followed by a space")
    return name


def new_subscriber(
    email: str,
    languages: str | Iterable[str],
    *,
    name: str | None = None,
    status: SubscriberStatus | str = S.active,
    subscribed_at: datetime | None = None,
    confirmed_at: datetime | None = None,
) -> NewSubscriber:
    """Validate one row of an import, or raise ValidationError."""
    try:
        status = SubscriberStatus(status)
    except ValueError as exc:
        choices = ", ".join(s.value for s in SubscriberStatus)
        raise ValidationError(f"unknown status {status!r} (choose from {choices})") from exc
    return NewSubscriber(
        email=normalise_email(email),
        languages=parse_languages(languages),
        name=clean_name(name),
        status=status,
        subscribed_at=subscribed_at,
        confirmed_at=confirmed_at,
    )


def suppression_hash(secret_key: str, email: str) -> str:
    return keyed_hash(secret_key, "suppression", email)


def ip_hash(secret_key: str, ip: str) -> str:
    try:
        ip = ipaddress.ip_address(ip.strip()).compressed
    except ValueError:
        ip = ip.strip()
    return keyed_hash(secret_key, "consent-ip", ip)


# --- reading ----------------------------------------------------------------------------


def get_by_email(session: Session, email: str) -> Subscriber | None:
    try:
        normalised = normalise_email(email)
    except ValidationError:
        return None
    return session.scalars(select(Subscriber).where(Subscriber.email == normalised)).first()


def is_suppressed(session: Session, secret_key: str, email: str) -> bool:
    digest = suppression_hash(secret_key, normalise_email(email))
    return (
        session.scalar(select(Suppression.id).where(Suppression.email_hash == digest)) is not None
    )


def token_holder(session: Session, data: TokenData) -> Subscriber:
    """The subscriber a genuine link acts on; TokenRevoked when its subscription is gone,
    TokenForTest for a test email's link (it names no subscriber).

    Ids are never reused, and a link carries the salt its subscriber had when it was made: a
    fresh subscription draws a new salt, so links of the earlier one act on nobody. A
    version-1 link (no salt) is honoured only for a row that kept its pre-salt 0 and already
    existed when the link was made.
    """
    if data.subscriber_id == TEST_SUBSCRIBER_ID:
        raise TokenForTest("this link came from a test email: it belongs to no subscription")
    subscriber = session.get(Subscriber, data.subscriber_id)
    if subscriber is not None:
        if data.salt is not None:
            if data.salt == subscriber.link_salt:
                return subscriber
        elif subscriber.link_salt == LEGACY_LINK_SALT and data.issued_at >= (
            subscriber.created_at.replace(microsecond=0)
        ):
            return subscriber
    raise TokenRevoked("this link belongs to a subscription that no longer exists")


def _locked(session: Session, subscriber_id: int) -> Subscriber:
    stmt = (
        select(Subscriber)
        .where(Subscriber.id == subscriber_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    subscriber = session.scalars(stmt).first()
    if subscriber is None:
        raise NotFound(f"no subscriber with id {subscriber_id}")
    return subscriber


def _locked_by_email(session: Session, email: str) -> Subscriber | None:
    stmt = (
        select(Subscriber)
        .where(Subscriber.email == email)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalars(stmt).first()


def _refuse_suppressed(session: Session, secret_key: str, email: str) -> None:
    if is_suppressed(session, secret_key, email):
        raise SubscriptionError(
            f"{email} asked to be forgotten and cannot be added to the list again"
        )


def _dialect_insert(session: Session, table: Any) -> Any:
    """INSERT that can say ON CONFLICT DO NOTHING on both databases."""
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


# --- the one place where a subscriber's state moves -------------------------------------


def _move(
    session: Session,
    subscriber: Subscriber,
    to: SubscriberStatus,
    *,
    kind: EventKind,
    source: EventSource,
    edition_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    if to not in TRANSITIONS[subscriber.status]:
        raise IllegalTransition(
            f"a subscriber who is {subscriber.status.value} cannot become {to.value}"
        )
    now = utcnow()
    subscriber.status = to
    subscriber.updated_at = now
    if to == S.active:
        subscriber.confirmed_at = now
    elif to == S.unsubscribed:
        subscriber.unsubscribed_at = now
    elif to == S.pending:  # a new opt-in: the old confirmation and the old links no longer count
        subscriber.confirmed_at = None
        subscriber.unsubscribed_at = None
        subscriber.link_salt = new_link_salt()
    _event(session, subscriber.id, kind, source, edition_id, detail)


def _event(
    session: Session,
    subscriber_id: int | None,
    kind: EventKind,
    source: EventSource,
    edition_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        Event(
            subscriber_id=subscriber_id,
            kind=kind.value,
            source=source,
            edition_id=edition_id,
            detail=detail,
        )
    )


def _consent_columns(secret_key: str, consent: Consent | None, now: datetime) -> dict[str, Any]:
    if consent is None:
        return {"consent_at": now}
    return {
        "consent_at": now,
        "consent_form": consent.form[:64],
        "consent_lang": consent.page_lang[:2] or None,
        "consent_user_agent": consent.user_agent[:400] if consent.user_agent else None,
        "consent_ip_hash": ip_hash(secret_key, consent.ip) if consent.ip else None,
    }


# --- the rules --------------------------------------------------------------------------


def subscribe(
    session: Session,
    secret_key: str,
    email: str,
    languages: str | Iterable[str],
    *,
    name: str | None = None,
    source: EventSource = EventSource.form,
    consent: Consent | None = None,
    confirmation: bool = True,
) -> SubscribeResult:
    """Start (or restart) a double opt-in; an active address is left as it is.

    `confirmation`: this request is promised its own confirmation email (the caller's limit
    may say no), so one that left for an earlier request no longer counts and the tick sends
    this one should its job be lost. Safe when two requests subscribe one address at once.
    """
    email = normalise_email(email)
    langs = format_languages(parse_languages(languages))
    name = clean_name(name)
    now = utcnow()
    consent_cols = _consent_columns(secret_key, consent, now)

    # Every address, whatever its state, costs the same two reads here, one write on its
    # row (none for erased or active ones) and one event: the answer's time says nothing.
    subscriber = _locked_by_email(session, email)
    _refuse_suppressed(session, secret_key, email)
    if subscriber is None:
        stmt = (
            _dialect_insert(session, Subscriber)
            .values(
                email=email,
                name=name,
                languages=langs,
                status=S.pending,
                created_at=now,
                updated_at=now,
                link_salt=new_link_salt(),
                **consent_cols,
            )
            .on_conflict_do_nothing(index_elements=["email"])
            .returning(Subscriber)
        )
        new = session.scalars(stmt).first()
        if new is not None:
            _event(session, new.id, EventKind.subscribed, source, detail={"languages": langs})
            return SubscribeResult(new, True)
        # A concurrent subscribe inserted it first (PostgreSQL waited for its commit).
        subscriber = _locked_by_email(session, email)
        if subscriber is None:
            raise SubscriptionError("the subscription changed meanwhile; please try again")

    if subscriber.status == S.active:
        # No change, and no way for a stranger to alter someone's languages from a form. The
        # event makes this answer write and commit as a new or pending address's does: the
        # time the form takes to answer must not tell whether an address is subscribed.
        _event(session, subscriber.id, EventKind.already_active, source)
        return SubscribeResult(subscriber, False)
    subscriber.languages = langs
    subscriber.name = name or subscriber.name
    for column, value in consent_cols.items():
        setattr(subscriber, column, value)
    if confirmation:  # in the row's one write, so the answer takes no longer
        subscriber.confirm_sent_at = subscriber.confirm_due_at = subscriber.confirm_error = None
        subscriber.confirm_attempts = 0
    if subscriber.status == S.pending:
        subscriber.updated_at = now
        _event(session, subscriber.id, EventKind.subscribed, source, detail={"languages": langs})
    else:
        _move(
            session,
            subscriber,
            S.pending,
            kind=EventKind.resubscribed,
            source=source,
            detail={"languages": langs},
        )
    return SubscribeResult(subscriber, True)


def record_refused(session: Session, source: EventSource = EventSource.form) -> None:
    """Note a refused subscribe (an erased address) without saying whose: the refusal then
    writes and commits as an accepted one does, and takes as long."""
    _event(session, None, EventKind.refused, source)


def add_subscriber(
    session: Session,
    secret_key: str,
    email: str,
    languages: str | Iterable[str],
    *,
    name: str | None = None,
    confirmed: bool = False,
    source: EventSource = EventSource.staff,
) -> Subscriber:
    """Staff adds one address (active if confirmed, else pending); Conflict if present."""
    row = new_subscriber(email, languages, name=name, status=S.active if confirmed else S.pending)
    _refuse_suppressed(session, secret_key, row.email)
    existing = get_by_email(session, row.email)
    if existing is not None:
        raise Conflict(
            f"{row.email} is already on the list ({existing.status.value}); nothing changed"
        )
    now = utcnow()
    subscriber = Subscriber(
        email=row.email,
        name=row.name,
        languages=format_languages(row.languages),
        status=row.status,
        created_at=now,
        updated_at=now,
        confirmed_at=now if confirmed else None,
    )
    try:
        with session.begin_nested():
            session.add(subscriber)
            session.flush()
    except IntegrityError as exc:  # a concurrent add won the race
        if get_by_email(session, row.email) is not None:
            raise Conflict(f"{row.email} is already on the list; nothing changed") from exc
        raise
    _event(
        session,
        subscriber.id,
        EventKind.added,
        source,
        detail={"status": row.status.value, "languages": subscriber.languages},
    )
    return subscriber


def import_subscribers(
    session: Session,
    secret_key: str,
    rows: Sequence[NewSubscriber],
    *,
    source: EventSource = EventSource.import_,
) -> ImportResult:
    """Insert many validated rows set-based; present and suppressed addresses are left out."""
    result = ImportResult()
    if not rows:
        return result
    by_hash = {suppression_hash(secret_key, r.email): r.email for r in rows}
    hashes = list(by_hash)
    for start in range(0, len(hashes), _CHUNK):
        found = session.scalars(
            select(Suppression.email_hash).where(
                Suppression.email_hash.in_(hashes[start : start + _CHUNK])
            )
        )
        result.suppressed.update(by_hash[h] for h in found)

    now = utcnow()
    params: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.email in result.suppressed or r.email in params:
            continue
        params[r.email] = {
            "email": r.email,
            "name": r.name,
            "languages": format_languages(r.languages),
            "status": r.status,
            "created_at": r.subscribed_at or now,
            "updated_at": now,
            "confirmed_at": r.confirmed_at or (now if r.status == S.active else None),
            "unsubscribed_at": now if r.status == S.unsubscribed else None,
            # The confirmation we are about to send starts its clock now.
            "consent_at": now if r.status == S.pending else None,
            "consent_form": "import" if r.status == S.pending else None,
            "link_salt": new_link_salt(),
        }
    if params:
        table = Subscriber.__table__
        stmt = (
            _dialect_insert(session, table)
            .on_conflict_do_nothing(index_elements=["email"])
            .returning(table.c.id, table.c.email)
        )
        for new_id, email in session.execute(stmt, list(params.values())):
            result.added[email] = new_id
        result.existing = set(params) - set(result.added)
    if result.added:
        session.execute(
            Event.__table__.insert(),
            [
                {
                    "subscriber_id": new_id,
                    "kind": EventKind.imported.value,
                    "source": source,
                    "detail": {"status": params[email]["status"].value},
                    "created_at": now,
                }
                for email, new_id in result.added.items()
            ],
        )
    return result


def confirm(
    session: Session, subscriber_id: int, *, source: EventSource = EventSource.link
) -> Subscriber:
    """Pending becomes active; confirming twice is harmless; anything else is refused."""
    subscriber = _locked(session, subscriber_id)
    if subscriber.status != S.active:
        _move(session, subscriber, S.active, kind=EventKind.confirmed, source=source)
    return subscriber


def change_languages(
    session: Session,
    subscriber_id: int,
    languages: str | Iterable[str],
    *,
    source: EventSource = EventSource.link,
    edition_id: int | None = None,
) -> Subscriber:
    subscriber = _locked(session, subscriber_id)
    langs = format_languages(parse_languages(languages))
    if langs != subscriber.languages:
        detail = {"from": subscriber.languages, "to": langs}
        subscriber.languages = langs
        subscriber.updated_at = utcnow()
        _event(
            session,
            subscriber.id,
            EventKind.languages_changed,
            source,
            edition_id=edition_id,
            detail=detail,
        )
    return subscriber


def unsubscribe(
    session: Session,
    subscriber_id: int,
    *,
    source: EventSource,
    edition_id: int | None = None,
) -> Subscriber:
    """Stop all mail at once; idempotent (a second click changes nothing)."""
    subscriber = _locked(session, subscriber_id)
    if subscriber.status not in (S.unsubscribed, S.complained):
        _move(
            session,
            subscriber,
            S.unsubscribed,
            kind=EventKind.unsubscribed,
            source=source,
            edition_id=edition_id,
        )
    return subscriber


def mark_bounced(
    session: Session,
    subscriber_ids: Sequence[int],
    *,
    edition_id: int | None = None,
    detail: str | Mapping[str, Any] | None = None,
) -> None:
    """Hard bounces, set-based: active or pending subscribers become bounced."""
    movable = [s for s, targets in TRANSITIONS.items() if S.bounced in targets and s != S.bounced]
    event_detail = (
        {"error": detail} if isinstance(detail, str) else (dict(detail) if detail else None)
    )
    ids = list(dict.fromkeys(subscriber_ids))
    now = utcnow()
    for start in range(0, len(ids), _CHUNK):
        changed = session.scalars(
            update(Subscriber)
            .where(Subscriber.id.in_(ids[start : start + _CHUNK]), Subscriber.status.in_(movable))
            .values(status=S.bounced, updated_at=now)
            .returning(Subscriber.id)
        ).all()
        if changed:
            session.execute(
                Event.__table__.insert(),
                [
                    {
                        "subscriber_id": sid,
                        "kind": EventKind.bounced.value,
                        "source": EventSource.bounce,
                        "edition_id": edition_id,
                        "detail": event_detail,
                        "created_at": now,
                    }
                    for sid in changed
                ],
            )


def mark_complained(
    session: Session,
    subscriber_id: int,
    *,
    edition_id: int | None = None,
    source: EventSource = EventSource.bounce,
    detail: dict[str, Any] | None = None,
) -> Subscriber:
    """A spam complaint (feedback loop): never mail this person again unless they re-subscribe."""
    subscriber = _locked(session, subscriber_id)
    if subscriber.status != S.complained:
        _move(
            session,
            subscriber,
            S.complained,
            kind=EventKind.complained,
            source=source,
            edition_id=edition_id,
            detail=detail,
        )
    return subscriber


def reactivate(
    session: Session, subscriber_id: int, *, staff_name: str, inbound_id: int | None = None
) -> Subscriber:
    """Staff judge a bounce false: the reader is active again, consent unchanged. Only from
    bounced: a complaint is undone by a new subscription and confirmation, never by staff."""
    subscriber = _locked(session, subscriber_id)
    if subscriber.status != S.bounced:
        raise IllegalTransition(
            f"only a bounced reader can be reactivated; this one is {subscriber.status.value}"
        )
    confirmed_at = subscriber.confirmed_at
    _move(
        session,
        subscriber,
        S.active,
        kind=EventKind.reactivated,
        source=EventSource.staff,
        detail={"staff": staff_name[:64], "inbound_id": inbound_id},
    )
    subscriber.confirmed_at = confirmed_at or subscriber.confirmed_at
    return subscriber


def record_returned(
    session: Session,
    subscriber_id: int,
    kind: EventKind,
    *,
    edition_id: int | None,
    detail: dict[str, Any],
) -> None:
    """Note in the audit trail that mail came back about this reader (bounce_policy)."""
    _event(session, subscriber_id, kind, EventSource.bounce, edition_id, detail)


def forget(
    session: Session,
    secret_key: str,
    subscriber_id_or_email: int | str,
    *,
    source: EventSource = EventSource.link,
    edition_id: int | None = None,
) -> None:
    """Erase the person (row, events, deliveries); keep only a keyed hash of the address."""
    if isinstance(subscriber_id_or_email, int):
        subscriber = session.get(Subscriber, subscriber_id_or_email)
        label = f"id {subscriber_id_or_email}"
    else:
        subscriber = get_by_email(session, subscriber_id_or_email)
        label = repr(subscriber_id_or_email)
    if subscriber is None:
        raise NotFound(f"no subscriber with address {label}")
    digest = suppression_hash(secret_key, subscriber.email)
    session.execute(
        _dialect_insert(session, Suppression.__table__)
        .values(email_hash=digest, reason="forgotten", created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["email_hash"])
    )
    # Events and deliveries go with the row (ON DELETE CASCADE).
    session.execute(
        delete(Subscriber)
        .where(Subscriber.id == subscriber.id)
        .execution_options(synchronize_session=False)
    )
    session.expunge(subscriber)
    # The audit trail keeps that an erasure happened, and nothing about whom.
    _event(session, None, EventKind.forgotten, source, edition_id=edition_id)


def purge_expired_pending(
    session: Session, *, now: datetime | None = None, older_than: timedelta = timedelta(days=30)
) -> int:
    """Delete pending subscribers whose confirmation link expired more than `older_than` ago."""
    cutoff = (now or utcnow()) - CONFIRM_MAX_AGE - older_than
    pending_since = func.coalesce(Subscriber.consent_at, Subscriber.created_at)
    result = session.execute(
        delete(Subscriber)
        .where(Subscriber.status == S.pending, pending_since < cutoff)
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        _event(session, None, EventKind.purged, EventSource.system, detail={"count": count})
    return count


def record_export(
    session: Session,
    subscriber_id: int,
    *,
    source: EventSource = EventSource.link,
    edition_id: int | None = None,
) -> None:
    """Note in the audit trail that the person downloaded their data (export_data reads only)."""
    _event(session, subscriber_id, EventKind.exported, source, edition_id=edition_id)


def export_data(session: Session, subscriber_id: int) -> dict[str, Any]:
    """Everything held about one person, JSON-ready."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound(f"no subscriber with id {subscriber_id}")
    events = session.scalars(
        select(Event).where(Event.subscriber_id == subscriber_id).order_by(Event.id)
    )
    deliveries = session.execute(
        select(Edition.week, Delivery.status, Delivery.sent_at)
        .join(Edition, Edition.id == Delivery.edition_id)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(Edition.week)
    )
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "languages": list(subscriber.language_list),
        "status": subscriber.status.value,
        "subscribed_at": _iso(subscriber.created_at),
        "confirmed_at": _iso(subscriber.confirmed_at),
        "unsubscribed_at": _iso(subscriber.unsubscribed_at),
        "consent": {
            "at": _iso(subscriber.consent_at),
            "form": subscriber.consent_form,
            "page_language": subscriber.consent_lang,
            "user_agent": subscriber.consent_user_agent,
            "ip_keyed_hash": subscriber.consent_ip_hash,
        },
        "events": [
            {
                "at": _iso(e.created_at),
                "kind": e.kind,
                "source": e.source.value,
                "edition_id": e.edition_id,
                "detail": e.detail,
            }
            for e in events
        ],
        "deliveries": [
            {"edition": week, "status": status.value, "sent_at": _iso(sent_at)}
            for week, status, sent_at in deliveries
        ],
    }


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return (value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)).isoformat()

"""The store: SQLAlchemy 2.0 typed models for subscribers, editions and deliveries."""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from newsletter.languages import LANGUAGE_SETS, format_languages
from newsletter.tokens import SALT_BITS

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
BigId = BigInteger().with_variant(Integer(), "sqlite")

LANGUAGE_SET_SQL = ", ".join(f"'{format_languages(s)}'" for s in LANGUAGE_SETS)


def utcnow() -> datetime:
    return datetime.now(UTC)


# A subscriber's link salt is bound into every link token made for them; 0 marks a row made
# before salts existed (see subscriptions.token_holder), so a drawn salt is never 0.
LEGACY_LINK_SALT = 0


def new_link_salt() -> int:
    """A fresh random salt: links made with any earlier one act on nobody."""
    return secrets.randbelow(2**SALT_BITS - 1) + 1


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both databases.

    SQLite keeps no offset: without this it would store an aware non-UTC time as its wall
    clock and hand back naive datetimes that cannot be compared with utcnow().
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # naive values in this code base mean UTC
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012
    # Every model here maps one Table (DeclarativeBase types it as any FromClause), so
    # set-based statements can take `Model.__table__` as it is.
    __table__: ClassVar[Table]


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # VARCHAR + CHECK on both databases: adding a state later is a plain migration.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda e: [m.value for m in e],
    )


class SubscriberStatus(enum.StrEnum):
    pending = "pending"
    active = "active"
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"


class EventSource(enum.StrEnum):
    form = "form"
    link = "link"
    one_click = "one-click"
    mailto = "mailto"
    bounce = "bounce"
    staff = "staff"
    import_ = "import"
    system = "system"


class StaffRole(enum.StrEnum):
    editor = "editor"
    admin = "admin"


class Trend(enum.StrEnum):
    improved = "improved"
    worsened = "worsened"
    unchanged = "unchanged"


class EditionStatus(enum.StrEnum):
    draft = "draft"
    scheduled = "scheduled"
    sending = "sending"
    paused = "paused"
    sent = "sent"
    cancelled = "cancelled"


class DeliveryStatus(enum.StrEnum):
    queued = "queued"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    skipped = "skipped"


class Subscriber(Base):
    __tablename__ = "subscribers"
    __table_args__ = (
        CheckConstraint(f"languages IN ({LANGUAGE_SET_SQL})", name="languages_set"),
        CheckConstraint("email = lower(email)", name="email_normalised"),
        # Ids are never reused (an old link names an id): SQLite needs AUTOINCREMENT for
        # that, PostgreSQL's sequence never goes back.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    # Ordered, comma-joined language codes; the first is the primary language.
    languages: Mapped[str] = mapped_column(String(8))
    status: Mapped[SubscriberStatus] = mapped_column(
        _enum(SubscriberStatus, "subscriber_status"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    # Consent proof: when, from which form and page language, which client, keyed IP hash.
    consent_at: Mapped[datetime | None]
    consent_form: Mapped[str | None] = mapped_column(String(64))
    consent_lang: Mapped[str | None] = mapped_column(String(2))
    consent_user_agent: Mapped[str | None] = mapped_column(String(400))
    consent_ip_hash: Mapped[str | None] = mapped_column(String(64))
    # Rotated on every fresh subscription; an erased row's id is never given again.
    link_salt: Mapped[int] = mapped_column(BigInteger, default=new_link_salt)
    # The confirmation email: when it left, how often it could not, why, and when the tick
    # tries again (see dispatch.confirmation).
    confirm_sent_at: Mapped[datetime | None]
    confirm_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    confirm_error: Mapped[str | None] = mapped_column(String(500))
    confirm_due_at: Mapped[datetime | None]

    events: Mapped[list[Event]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def language_list(self) -> tuple[str, ...]:
        return tuple(self.languages.split(","))

    @property
    def primary_language(self) -> str:
        return self.language_list[0]


class Event(Base):
    """Append-only audit trail of every subscriber state change and why."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    # No foreign key: the audit trail outlives an edition that is deleted.
    edition_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    source: Mapped[EventSource] = mapped_column(_enum(EventSource, "event_source"))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    subscriber: Mapped[Subscriber | None] = relationship(back_populates="events")


class Suppression(Base):
    """Addresses that must never be added again, kept only as a keyed hash."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[StaffRole] = mapped_column(_enum(StaffRole, "staff_role"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set while the account is disabled: no login, no session, no API token works.
    disabled_at: Mapped[datetime | None]


class StaffLogin(Base):
    """A logged-in staff session, held on the server: deleting the row ends it at once.

    The cookie carries a random secret; only its SHA-256 is stored here."""

    __tablename__ = "staff_logins"

    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token for the JSON API; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]

    staff_user: Mapped[StaffUser] = relationship()


class Topic(Base):
    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    # {"be": "...", "ru": "...", "en": "..."}
    names: Mapped[dict[str, str]] = mapped_column(JSON)


class Edition(Base):
    """One per ISO week."""

    __tablename__ = "editions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8), unique=True)  # "2020-W05"
    status: Mapped[EditionStatus] = mapped_column(
        _enum(EditionStatus, "edition_status"), default=EditionStatus.draft, index=True
    )
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Staff overrides of the generated subject, per language.
    subjects: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    fallback_language: Mapped[str | None] = mapped_column(String(2))
    scheduled_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    waiting_reason: Mapped[str | None] = mapped_column(Text)
    planned_count: Mapped[int] = mapped_column(Integer, default=0)
    # Planning goes in chunks of subscribers by id and resumes after this one; NULL once
    # every active subscriber has a delivery. The edition cannot finish before that.
    plan_cursor: Mapped[int | None] = mapped_column(BigId)
    # When the tick last saw claims of this edition go unrenewed; it requeues only those
    # still unrenewed a full stale period later (see dispatch.scheduling).
    claims_checked_at: Mapped[datetime | None]
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    articles: Mapped[list[Article]] = relationship(
        back_populates="edition",
        order_by="Article.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Article(Base):
    __tablename__ = "articles"
    __table_args__ = (UniqueConstraint("edition_id", "slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(100))
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id"))
    trend: Mapped[Trend] = mapped_column(_enum(Trend, "trend"))
    position: Mapped[int] = mapped_column(Integer, default=0)

    edition: Mapped[Edition] = relationship(back_populates="articles")
    topic: Mapped[Topic] = relationship(lazy="joined")
    translations: Mapped[list[ArticleTranslation]] = relationship(
        back_populates="article",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )

    def translation(self, lang: str) -> ArticleTranslation | None:
        return next((t for t in self.translations if t.lang == lang), None)


class ArticleTranslation(Base):
    __tablename__ = "article_translations"
    __table_args__ = (
        UniqueConstraint("article_id", "lang"),
        CheckConstraint("lang IN ('be', 'ru', 'en')", name="lang"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    lang: Mapped[str] = mapped_column(String(2))
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)  # Markdown

    article: Mapped[Article] = relationship(back_populates="translations")


class Delivery(Base):
    """One row per (edition, subscriber): the unit of sending and of idempotence."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("edition_id", "subscriber_id"),
        Index("ix_deliveries_edition_status_id", "edition_id", "status", "id"),
        # A Message-ID names its delivery's id: a bounce must never land on a later one.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key: editions are never deleted, and PostgreSQL would check the key once per
    # planned delivery (a fifth of planning time; see migration 0005).
    edition_id: Mapped[int] = mapped_column(Integer)
    # Erasing a subscriber erases their deliveries with them.
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.queued
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # Only mail sent before Message-IDs were tokens has one here (message_ids.py): read by
    # bounce_policy to attribute reports about it; NULL since.
    message_id: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class ContentVersion(Base):
    """One row whose number database triggers raise whenever what the public pages show may
    have changed (an edition's status, languages or subjects; articles, their texts, topics).

    Every web process compares it with the number its rendered pages were made at: one cheap
    read tells all of them, whichever process or command made the change (migration 0006).
    """

    __tablename__ = "content_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class SchedulerState(Base):
    """The scheduler's tick: which process holds the lease to run it, and when it last ran."""

    __tablename__ = "scheduler_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    last_tick_at: Mapped[datetime | None]
    last_tick_by: Mapped[str | None] = mapped_column(String(200))


class RateCount(Base):
    """One windowed count of the rate limiter when no Redis is configured (shared by every
    web process through the database). `key` is a keyed hash: no IP or address in clear."""

    __tablename__ = "rate_counts"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    # Seconds since the epoch: compared with the clock, never shown.
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    last_at: Mapped[float] = mapped_column(Float)


class InboundKind(enum.StrEnum):
    """What an inbound message turned out to be (None on the row: not parsed yet)."""

    hard_bounce = "hard_bounce"  # 5.x.x: the address is dead
    soft_bounce = "soft_bounce"  # 4.x.x after the remote server gave up (full mailbox...)
    delayed = "delayed"  # a warning that delivery is still being tried: ignored
    complaint = "complaint"  # an ARF feedback report: the reader pressed "spam"
    auto_reply = "auto_reply"  # RFC 3834 vacation notices and other auto-replies: ignored
    unsubscribe = "unsubscribe"  # mail to the List-Unsubscribe mailto address
    unknown = "unknown"  # nothing we understand: kept for staff to read


class InboundStatus(enum.StrEnum):
    received = "received"  # stored raw, not parsed yet
    processed = "processed"
    failed = "failed"  # parsing or the policy raised: the raw message stays for staff


class InboundMessage(Base):
    """One message that came back to the inbound address, stored raw before it is parsed."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    channel: Mapped[str] = mapped_column(String(8))  # smtp, lmtp, imap
    mail_from: Mapped[str | None] = mapped_column(String(320))
    recipient: Mapped[str] = mapped_column(String(320))
    size: Mapped[int] = mapped_column(Integer)  # bytes as received, before any cut
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)  # erased after the keep period
    status: Mapped[InboundStatus] = mapped_column(
        _enum(InboundStatus, "inbound_status"), default=InboundStatus.received
    )
    kind: Mapped[InboundKind | None] = mapped_column(_enum(InboundKind, "inbound_kind"), index=True)
    # Whom it concerns, when a signed token or a matching Message-ID says so; erasing the
    # reader erases what came back about them.
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    edition_id: Mapped[int | None] = mapped_column(Integer, index=True)
    attributed_by: Mapped[str | None] = mapped_column(String(16))  # verp, message-id
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(500))

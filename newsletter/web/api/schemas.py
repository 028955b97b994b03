"""Request and response models of the JSON API (they are what /openapi.json describes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from newsletter.languages import LANGUAGES
from newsletter.statistics import EditionCounts, WeekCounts


def _plain_text(value: str) -> str:
    # PostgreSQL refuses NUL in text and lone surrogates cannot be encoded: a 422, not a 500.
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


Text = Annotated[str, AfterValidator(_plain_text)]
Language = Annotated[str, Field(pattern="^(be|ru|en)$", examples=["be"])]
Week = Annotated[str, Field(pattern=r"^[0-9]{4}-W[0-9]{2}$", examples=["2020-W05"])]


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --------------------------------------------------------------------------- subscribers


class SubscriberOut(Model):
    id: int
    email: str
    name: str | None
    languages: list[str] = Field(description="Ordered: the first is the primary language")
    status: str
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None


class EventOut(Model):
    kind: str
    source: str
    edition_id: int | None
    detail: dict[str, Any] | None
    created_at: datetime


class SubscriberDetail(SubscriberOut):
    events: list[EventOut]


class SubscriberList(Model):
    total: int
    items: list[SubscriberOut]


def _distinct(languages: list[str]) -> list[str]:
    if len(set(languages)) != len(languages):
        raise ValueError("a language is listed twice")
    return languages


class SubscriberCreate(Model):
    email: Annotated[Text, Field(min_length=3, max_length=320, examples=["reader@example.org"])]
    languages: Annotated[
        list[Language],
        Field(min_length=1, max_length=len(LANGUAGES), description="Ordered, primary first"),
        AfterValidator(_distinct),
    ]
    name: Annotated[Text, Field(max_length=200)] | None = None
    confirmed: bool = Field(
        False, description="True adds an active subscriber; false sends a confirmation email"
    )


# --------------------------------------------------------------------------- editions


class Completeness(Model):
    done: int
    total: int
    missing: list[str] = Field(description="Slugs of the articles lacking this language")


class EditionOut(Model):
    week: str
    status: str
    languages: list[str]
    articles: int
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    planned: int
    sent: int
    failed: int
    skipped: int
    completeness: dict[str, Completeness]


class TranslationOut(Model):
    lang: str
    title: str
    body: str


class ArticleOut(Model):
    slug: str
    topic: str
    trend: str
    position: int
    translations: dict[str, TranslationOut]
    missing: list[str]


class EditionDetail(EditionOut):
    subjects: dict[str, str]
    items: list[ArticleOut]


class EditionImport(Model):
    content: Annotated[
        Text,
        Field(min_length=1, max_length=2_000_000, description="The edition YAML file's text"),
    ]


class TranslationIn(Model):
    title: Annotated[Text, Field(min_length=1, max_length=500)]
    body: Annotated[Text, Field(min_length=1, max_length=100_000)]


# --------------------------------------------------------------------------- sends


class SendStart(Model):
    at: datetime | None = Field(
        None,
        description="When to send (ISO 8601); without an offset it is read in "
        "NEWSLETTER_TIMEZONE; absent: now",
    )
    fallback_language: Language | None = Field(
        None, description="Used for articles lacking a reader's language"
    )


class TestSend(Model):
    to: Annotated[Text, Field(min_length=3, max_length=320, examples=["editor@example.org"])]


class ProgressOut(Model):
    week: str
    status: str
    total: int
    queued: int
    sending: int
    sent: int
    failed: int
    skipped: int
    done: int
    percent: float
    planning: bool = Field(description="more readers are still being planned")
    scheduled_at: datetime | None


class Message(Model):
    detail: str


# --------------------------------------------------------------------------- statistics


class StatisticsOut(Model):
    by_status: dict[str, int]
    by_language: dict[str, int] = Field(description="Active subscribers reading each language")
    status_over_time: list[WeekCounts]
    languages_over_time: list[WeekCounts]
    # The domain's dataclass, served as it is: its fields are declared once, in statistics.py.
    editions: list[EditionCounts]


# --------------------------------------------------------------------------- bounces


class ReturnedOut(Model):
    """One message that came back to the inbound address."""

    id: int
    received_at: datetime
    kind: str | None = Field(
        description="hard_bounce, soft_bounce, delayed, complaint, auto_reply, unsubscribe, "
        "unknown; null until parsed"
    )
    status: str = Field(description="received, processed or failed")
    reason: str
    subscriber_id: int | None = Field(description="The reader it concerns, when attributed")
    email: str | None
    subscriber_status: str | None
    edition: str | None = Field(description="The week of the edition it concerns")
    attributed_by: str | None = Field(description="verp or message-id")


class ReturnedList(Model):
    total: int
    items: list[ReturnedOut]


class ReturnedDetailOut(ReturnedOut):
    recipient: str
    mail_from: str | None
    channel: str
    size: int
    truncated: bool
    detail: dict[str, Any] | None
    error: str | None
    raw: str | None = Field(description="The raw message as text; null once erased")


class EditionRatesOut(Model):
    week: str
    attempted: int = Field(description="Deliveries sent or failed")
    bounces: int
    complaints: int
    bounce_rate: float
    complaint_rate: float
    warnings: list[str] = Field(description="Rates above the providers' thresholds")

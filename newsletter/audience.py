"""Who a send would reach before it starts: active readers per language set, and the texts
each set lacks (shown in the fallback language, or the reason the send would be refused)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.errors import NewsletterError
from newsletter.languages import format_languages, parse_languages
from newsletter.models import Edition, Subscriber, SubscriberStatus


@dataclass(frozen=True)
class SetOutlook:
    """One ordered language set: how many active readers hold it, and what they would miss."""

    languages: tuple[str, ...]
    readers: int
    missing: tuple[tuple[str, str], ...]  # (article slug, language) with no text

    @property
    def label(self) -> str:
        return format_languages(self.languages)


@dataclass(frozen=True)
class SendOutlook:
    """What "send now" would do: the sets in order of readers, and whether it may start."""

    week: str
    fallback_language: str | None
    sets: tuple[SetOutlook, ...]
    refusal: str | None  # why check_sendable refuses the texts, in its words; None: they do

    @property
    def readers(self) -> int:
        return sum(s.readers for s in self.sets)

    @property
    def may_start(self) -> bool:
        """The texts pass and someone would get it (start_send refuses a send to nobody)."""
        return self.refusal is None and self.readers > 0

    @property
    def missing(self) -> dict[str, tuple[str, ...]]:
        """Language -> the articles without a text in it, over every set that is sent."""
        out: dict[str, list[str]] = {}
        for outlook in self.sets:
            for slug, lang in outlook.missing:
                if slug not in out.setdefault(lang, []):
                    out[lang].append(slug)
        return {lang: tuple(slugs) for lang, slugs in sorted(out.items())}


def readers_by_language_set(session: Session) -> dict[tuple[str, ...], int]:
    """Active readers counted per ordered language set, in one grouped query."""
    rows = session.execute(
        select(Subscriber.languages, func.count())
        .where(Subscriber.status == SubscriberStatus.active)
        .group_by(Subscriber.languages)
    ).all()
    counts: dict[tuple[str, ...], int] = {}
    for languages, count in rows:
        key = parse_languages(languages)
        counts[key] = counts.get(key, 0) + int(count)
    return counts


def send_outlook(
    session: Session, edition: Edition, fallback_language: str | None = None
) -> SendOutlook:
    """The confirmation page's facts, checked by the same rule start_send applies."""
    from newsletter.editions import check_sendable

    fallback = fallback_language or edition.fallback_language
    have = {a.slug: {t.lang for t in a.translations} for a in edition.articles}
    sets = []
    for languages, readers in readers_by_language_set(session).items():
        missing = tuple(
            (slug, lang) for lang in languages for slug, langs in have.items() if lang not in langs
        )
        sets.append(SetOutlook(languages, readers, missing))
    sets.sort(key=lambda s: (-s.readers, s.label))
    refusal = None
    try:
        check_sendable(edition, fallback)
    except NewsletterError as exc:
        refusal = str(exc)
    return SendOutlook(edition.week, fallback, tuple(sets), refusal)

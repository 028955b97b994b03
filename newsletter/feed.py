"""The archive as an Atom feed (RFC 4287) in one language, built with feedgen.

One entry per sent edition, newest first (at most FEED_SIZE): its id and link are the
edition's archive page in that language, its content the articles as that page shows them.
Only `sent` editions: an edition still sending may yet be cancelled, and a feed reader keeps
what it has once fetched.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache

from feedgen.feed import FeedGenerator
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter import i18n
from newsletter.errors import EditionIncomplete
from newsletter.links import archive_url, feed_url, subscribe_url
from newsletter.models import Edition, EditionStatus
from newsletter.paths import templates_dir
from newsletter.rendering import ArticleView, edition_sections, edition_subject

FEED_SIZE = 52  # a year of weeks; older editions stay in the archive
MEDIA_TYPE = "application/atom+xml; charset=utf-8"
# An empty feed still needs an <updated>: a fixed instant keeps its bytes (and ETag) stable.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


# Characters XML 1.0 cannot hold at all (lxml refuses them): staff text is data, and one
# stray control character must not make the whole feed an error.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)


def _utc(value: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(templates_dir() / "feed"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def entry_html(articles: list[ArticleView], lang: str) -> str:
    """The HTML content of one entry (escaped by Jinja2; feedgen escapes it again as XML)."""
    note = i18n.gettext_for(lang, "Not yet translated into this language.")
    template = _environment().get_template("entry.html")
    return template.render(articles=articles, lang=lang, not_translated=note)


def archive_feed(session: Session, base_url: str, lang: str) -> bytes:
    """The Atom document of the archive in `lang` (UTF-8 bytes, with its XML declaration)."""
    editions = session.scalars(
        select(Edition)
        .where(Edition.status == EditionStatus.sent)
        .order_by(Edition.week.desc())
        .limit(FEED_SIZE)
    ).all()
    title = i18n.digest_title(lang)
    feed = FeedGenerator()
    feed.id(archive_url(base_url, lang))
    feed.title(title)
    feed.subtitle(i18n.gettext_for(lang, "Archive"))
    feed.language(lang)
    feed.author({"name": title, "uri": subscribe_url(base_url, lang)})
    feed.link(href=archive_url(base_url, lang), rel="alternate", type="text/html", hreflang=lang)
    feed.link(href=feed_url(base_url, lang), rel="self", type="application/atom+xml")
    feed.generator("newsletter")
    newest = NEVER
    for edition in editions:
        try:
            articles = edition_sections(session, edition, lang, edition.fallback_language)
        except EditionIncomplete:
            continue  # not written in this language and no fallback: not in this feed
        sent = _utc(edition.started_at or edition.finished_at or edition.created_at)
        updated = _utc(edition.finished_at) if edition.finished_at else sent
        newest = max(newest, updated)
        page = archive_url(base_url, lang, edition.week)
        entry = feed.add_entry(order="append")
        entry.id(page)
        entry.title(xml_text(edition_subject(edition, lang)))
        entry.link(href=page, rel="alternate", type="text/html", hreflang=lang)
        entry.published(sent)
        entry.updated(updated)
        for slug, name in dict.fromkeys((a.topic_slug, a.topic) for a in articles):
            entry.category(term=xml_text(slug), label=xml_text(name))
        entry.content(xml_text(entry_html(articles, lang)), type="html")
    feed.updated(newest)
    return bytes(feed.atom_str(pretty=False))

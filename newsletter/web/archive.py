"""The public archive: editions that went out, and each one's page in each language.

Both pages are rendered once per content version and served from the page cache."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter import feed
from newsletter.editions import get_edition, parse_week
from newsletter.errors import EditionIncomplete, NotFound, ValidationError
from newsletter.i18n import format_week_range
from newsletter.links import archive_url
from newsletter.models import Edition, EditionStatus
from newsletter.rendering import edition_sections
from newsletter.runtime import Runtime
from newsletter.web.cached import PUBLIC, REVALIDATE, SHORT, cached_page, html
from newsletter.web.pagecache import Rendered
from newsletter.web.pages import render_text
from newsletter.web.subscriptions import check_lang

router = APIRouter()

# Once sending starts, readers hold emails whose "view in browser" link must work.
PUBLISHED = (EditionStatus.sending, EditionStatus.paused, EditionStatus.sent)


@router.get("/{lang}/archive/")
async def archive(request: Request, lang: str) -> Response:
    """Published editions, newest first."""
    check_lang(lang)
    runtime: Runtime = request.app.state.runtime

    def render() -> Rendered:
        with runtime.session() as session:
            return html(_archive_page(request, session, lang), SHORT)

    return await cached_page(request, render)


def _archive_page(request: Request, session: Session, lang: str) -> str:
    editions = session.scalars(
        select(Edition).where(Edition.status.in_(PUBLISHED)).order_by(Edition.week.desc())
    ).all()
    items = [
        {"week": e.week, "range": format_week_range(e.week, lang)}
        for e in editions
        if lang in e.languages or e.fallback_language
    ]
    return render_text(request, "archive.html", lang, {"editions": items})


@router.get("/{lang}/archive.atom")
async def archive_feed(request: Request, lang: str) -> Response:
    """The archive as an Atom feed in that language: one entry per sent edition."""
    check_lang(lang)
    runtime: Runtime = request.app.state.runtime

    def render() -> Rendered:
        with runtime.session() as session:
            body = feed.archive_feed(session, runtime.settings.base_url, lang)
        return Rendered(body, feed.MEDIA_TYPE, SHORT)

    return await cached_page(request, render)


@router.get("/{lang}/archive/{week}")
async def edition_page(request: Request, lang: str, week: str) -> Response:
    """One edition in one language: the email's "view in browser" link."""
    check_lang(lang)
    try:
        iso = parse_week(week)
    except ValidationError as exc:
        raise NotFound(f"no edition {week!r}") from exc
    if str(iso) != week:  # one address per edition: /2020-w5 is not /2020-W05
        raise NotFound(f"no edition {week!r}")
    runtime: Runtime = request.app.state.runtime

    def render() -> Rendered:
        with runtime.session() as session:
            return _edition_page(request, session, runtime, lang, week)

    return await cached_page(request, render)


def _edition_page(
    request: Request, session: Session, runtime: Runtime, lang: str, week: str
) -> Rendered:
    edition = get_edition(session, week)
    if edition.status not in PUBLISHED:
        raise NotFound(f"edition {week} is not published")
    try:
        sections = edition_sections(session, edition, lang, edition.fallback_language)
    except EditionIncomplete as exc:  # not written in this language, and no fallback
        raise NotFound(f"edition {week} is not available in {lang}") from exc
    base_url = runtime.settings.base_url
    alternates = {other: archive_url(base_url, other, week) for other in edition.languages}
    context = {
        "edition": edition,
        "week_range": format_week_range(parse_week(week), lang),
        "sections": sections,
        "alternates": alternates,
        "canonical": archive_url(base_url, lang, week),
    }
    page = render_text(request, "edition.html", lang, context)
    return html(page, PUBLIC if edition.status is EditionStatus.sent else REVALIDATE)

"""The public archive: editions that went out, and each one's page in each language."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from newsletter.editions import get_edition, parse_week
from newsletter.errors import EditionIncomplete, NotFound, ValidationError
from newsletter.i18n import format_week_range
from newsletter.links import archive_url
from newsletter.models import Edition, EditionStatus
from newsletter.rendering import edition_sections
from newsletter.web.deps import SessionDep, SettingsDep
from newsletter.web.pages import render
from newsletter.web.subscriptions import check_lang

router = APIRouter()

# Once sending starts, readers hold emails whose "view in browser" link must work.
PUBLISHED = (EditionStatus.sending, EditionStatus.paused, EditionStatus.sent)
CACHE = {"Cache-Control": "public, max-age=300"}


@router.get("/{lang}/archive/")
def archive(request: Request, lang: str, session: SessionDep) -> Response:
    """Published editions, newest first."""
    check_lang(lang)
    editions = session.scalars(
        select(Edition).where(Edition.status.in_(PUBLISHED)).order_by(Edition.week.desc())
    ).all()
    items = [
        {"week": e.week, "range": format_week_range(e.week, lang)}
        for e in editions
        if lang in e.languages or e.fallback_language
    ]
    return render(request, "archive.html", lang, {"editions": items}, headers=CACHE)


@router.get("/{lang}/archive/{week}")
def edition_page(
    request: Request, lang: str, week: str, session: SessionDep, settings: SettingsDep
) -> Response:
    """One edition in one language: the email's "view in browser" link."""
    check_lang(lang)
    try:
        iso = parse_week(week)
    except ValidationError as exc:
        raise NotFound(f"no edition {week!r}") from exc
    if str(iso) != week:  # one address per edition: /2020-w5 is not /2020-W05
        raise NotFound(f"no edition {week!r}")
    edition = get_edition(session, week)
    if edition.status not in PUBLISHED:
        raise NotFound(f"edition {week} is not published")
    try:
        sections = edition_sections(session, edition, lang, edition.fallback_language)
    except EditionIncomplete as exc:  # not written in this language, and no fallback
        raise NotFound(f"edition {week} is not available in {lang}") from exc
    alternates = {other: archive_url(settings.base_url, other, week) for other in edition.languages}
    context = {
        "edition": edition,
        "week_range": format_week_range(iso, lang),
        "sections": sections,
        "alternates": alternates,
        "canonical": archive_url(settings.base_url, lang, week),
    }
    return render(request, "edition.html", lang, context, headers=CACHE)

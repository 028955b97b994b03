"""Staff pages for editions: the list by week, one edition, the article editor, previews."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from newsletter import articles
from newsletter.bounce_reports import edition_rates
from newsletter.config import Settings
from newsletter.languages import (
    LANGUAGE_SETS,
    LANGUAGES,
    format_languages,
    parse_fallback,
    parse_languages,
)
from newsletter.models import Edition, EditionStatus
from newsletter.web.admin.deps import CsrfDep, SessionDep, StaffDep
from newsletter.web.admin.routing import AdminRoute, redirect, render, settings_of

router = APIRouter(route_class=AdminRoute)

# The email preview is shown in a sandboxed frame: scripts and forms stay dead inside it.
PREVIEW_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'self'; sandbox"
    ),
    "X-Frame-Options": "SAMEORIGIN",
    "Cache-Control": "no-store",
}


def completeness(edition: Edition) -> dict[str, dict[str, object]]:
    """Per language: how many articles are translated, and which slugs are missing."""
    from newsletter.editions import missing_translations

    missing = missing_translations(edition)
    total = len(edition.articles)
    out: dict[str, dict[str, object]] = {}
    for lang in LANGUAGES:
        slugs = [slug for slug, langs in missing.items() if lang in langs]
        out[lang] = {"done": total - len(slugs), "total": total, "missing": slugs}
    return out


def load_edition(session: Session, week: str) -> Edition:
    from newsletter.editions import get_edition

    return get_edition(session, week)


@dataclass(frozen=True)
class Preview:
    edition: Edition
    languages: tuple[str, ...]
    fallback_language: str | None
    subject: str
    html: str
    text: str


def render_preview(
    session: Session,
    settings: Settings,
    edition: Edition,
    languages: tuple[str, ...],
    fallback_language: str | None = None,
) -> Preview:
    """The email one set of languages receives, rendered by the same code as a real send."""
    from newsletter.messages import preview_message

    raw = preview_message(
        session, settings, edition, languages, fallback_language=fallback_language
    )
    message = email.message_from_bytes(raw, policy=email.policy.default)
    html = text = ""
    for part in message.walk():
        if part.get_content_type() == "text/html" and not html:
            html = part.get_content()  # type: ignore[attr-defined]
        elif part.get_content_type() == "text/plain" and not text:
            text = part.get_content()  # type: ignore[attr-defined]
    subject = str(message["Subject"] or "")
    return Preview(edition, languages, fallback_language, subject, html, text)


def requested_preview(
    request: Request,
    week: str,
    session: SessionDep,
    staff: StaffDep,
    langs: str = "be",
    fallback: str | None = None,
) -> Preview:
    """The preview that the `langs` and `fallback` query parameters ask for."""
    # Staff, then the week, then the languages: anonymous visitors go to the login page
    # whatever they asked, and an unknown week is a 404 even when the languages are bad too.
    edition = load_edition(session, week)
    languages = parse_languages(langs)
    fallback_language = parse_fallback(fallback)
    return render_preview(session, settings_of(request), edition, languages, fallback_language)


PreviewDep = Annotated[Preview, Depends(requested_preview)]


@router.get("/")
def home(staff: StaffDep, request: Request) -> Response:
    return redirect(request, "/admin/editions")


@router.get("/editions")
def edition_list(request: Request, session: SessionDep, staff: StaffDep) -> Response:
    editions = list(session.scalars(select(Edition).order_by(Edition.week.desc())))
    rows = [{"edition": e, "completeness": completeness(e)} for e in editions]
    return render(request, "admin/editions.html", {"rows": rows})


def import_notices(request: Request) -> list[tuple[str, str]]:
    """The line an upload's redirect asks for: how many articles it added, updated, kept."""
    counts = []
    for key in ("added", "updated", "kept"):
        value = request.query_params.get(key, "")
        if not (value.isascii() and value.isdigit() and len(value) < 7):
            return []
        counts.append(f"{value} {key}")
    kept = " (kept: in the week, not in the file)" if not counts[2].startswith("0 ") else ""
    return [("ok", f"Imported: {', '.join(counts)} article(s){kept}.")]


@router.get("/editions/{week}")
def edition_page(request: Request, week: str, session: SessionDep, staff: StaffDep) -> Response:
    edition = load_edition(session, week)
    settings = settings_of(request)
    return render(
        request,
        "admin/edition.html",
        {
            "edition": edition,
            "completeness": completeness(edition),
            "language_sets": [format_languages(s) for s in LANGUAGE_SETS],
            "timezone": settings.timezone,
            "now": datetime.now(UTC),
            "running": edition.status in (EditionStatus.sending, EditionStatus.paused),
            "notices": import_notices(request),
            "rates": edition_rates(session, edition),
        },
    )


@router.get("/editions/{week}/articles/{slug}/{lang}")
def article_editor(
    request: Request, week: str, slug: str, lang: str, session: SessionDep, staff: StaffDep
) -> Response:
    edition = load_edition(session, week)
    article = articles.get_article(edition, slug)
    parse_languages(lang)
    translation = article.translation(lang)
    return render(
        request,
        "admin/article.html",
        {
            "edition": edition,
            "article": article,
            "lang": lang,
            "title": translation.title if translation else "",
            "body": translation.body if translation else "",
            "others": [t for t in article.translations if t.lang != lang],
            "saved": request.query_params.get("saved") == "1",
        },
    )


@router.post("/editions/{week}/articles/{slug}/{lang}")
def save_article(
    request: Request,
    week: str,
    slug: str,
    lang: str,
    session: SessionDep,
    staff: StaffDep,
    _csrf: CsrfDep,
    title: Annotated[str, Form()] = "",
    body: Annotated[str, Form()] = "",
) -> Response:
    edition = load_edition(session, week)
    articles.save_translation(session, edition, slug, lang, title=title, body=body)
    return redirect(request, f"/admin/editions/{edition.week}/articles/{slug}/{lang}?saved=1")


@router.get("/editions/{week}/preview")
def preview_page(request: Request, staff: StaffDep, preview: PreviewDep) -> Response:
    return render(
        request,
        "admin/preview.html",
        {
            "edition": preview.edition,
            "langs": format_languages(preview.languages),
            "fallback": preview.fallback_language or "",
            "preview": preview,
            "language_sets": [format_languages(s) for s in LANGUAGE_SETS],
        },
    )


@router.get("/editions/{week}/preview/email")
def preview_email(staff: StaffDep, preview: PreviewDep) -> Response:
    return HTMLResponse(preview.html, headers=PREVIEW_HEADERS)

"""Rendering pages: one Jinja2 environment (autoescaped), gettext from the shared catalogs."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from newsletter.i18n import LANGUAGE_NAMES, digest_title, translations
from newsletter.languages import LANGUAGES
from newsletter.paths import templates_dir


@cache
def make_environment() -> Environment:
    """One environment per process: templates compile once, whatever the number of apps."""
    env = Environment(
        loader=FileSystemLoader(templates_dir() / "web"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["LANGUAGES"] = LANGUAGES
    env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
    env.globals["digest_title"] = digest_title
    return env


def switch_url(request: Request, lang: str) -> str:
    """This page in another language: swap the /{lang}/ prefix, or set ?lang=."""
    parts = request.url.path.split("/")
    if len(parts) > 1 and parts[1] in LANGUAGES:
        parts[1] = lang
        return "/".join(parts)
    query = dict(request.query_params)
    query["lang"] = lang
    return f"{request.url.path}?{urlencode(query)}"


def render(
    request: Request,
    template: str,
    lang: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render templates/web/<template> in `lang`; the language switch keeps the same page."""
    html = render_text(request, template, lang, context)
    return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))


def render_text(
    request: Request, template: str, lang: str, context: Mapping[str, Any] | None = None
) -> str:
    """The page as text: what `render` sends, and what the page cache keeps."""
    env: Environment = request.app.state.pages
    catalog = translations(lang)
    return env.get_template(template).render(
        {
            "lang": lang,
            "_": catalog.gettext,
            "gettext": catalog.gettext,
            "ngettext": catalog.ngettext,
            "switch_urls": {other: switch_url(request, other) for other in LANGUAGES},
            **(context or {}),
        }
    )

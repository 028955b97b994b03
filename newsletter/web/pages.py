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


def switch_url(request: Request, lang: str, switch: str | None = None) -> str:
    """This page in another language. A page answering a GET: swap the /{lang}/ prefix, or
    set ?lang=. A page answering a POST has no address of its own to swap (GET there is 405):
    the route names one, `switch` with a "{lang}" in it, else the language's home page."""
    if switch is not None:
        return switch.replace("{lang}", lang)
    if request.method not in ("GET", "HEAD"):
        return f"/{lang}/"
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
    switch: str | None = None,
) -> HTMLResponse:
    """Render templates/web/<template> in `lang`; the language switch keeps the same page
    (or goes where `switch` says: see switch_url)."""
    html = render_text(request, template, lang, context, switch=switch)
    return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))


def render_text(
    request: Request,
    template: str,
    lang: str,
    context: Mapping[str, Any] | None = None,
    *,
    switch: str | None = None,
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
            "switch_urls": {other: switch_url(request, other, switch) for other in LANGUAGES},
            **(context or {}),
        }
    )

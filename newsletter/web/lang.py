"""Which language a page speaks: the path prefix, else ?lang=, else Accept-Language."""

from __future__ import annotations

from fastapi import Request

from newsletter.languages import DEFAULT_LANGUAGE, LANGUAGES


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The best of be/ru/en for an Accept-Language header ('ru-RU,ru;q=0.9,en;q=0.8')."""
    best, best_q = default, 0.0
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        # Ties keep the earlier entry: the header's order is the reader's order.
        q -= position * 1e-6
        if q > best_q:
            best, best_q = primary, q
    return best


def request_language(request: Request, preferred: str | None = None) -> str:
    """The page language: a route's choice, /{lang}/..., ?lang=, the preferred one, the header."""
    chosen = getattr(request.state, "lang", None)
    if chosen in LANGUAGES:
        return str(chosen)
    first = request.url.path.strip("/").split("/", 1)[0]
    if first in LANGUAGES:
        return first
    query = request.query_params.get("lang")
    if query in LANGUAGES:
        return str(query)
    if preferred in LANGUAGES:
        return str(preferred)
    return negotiate(request.headers.get("accept-language"))

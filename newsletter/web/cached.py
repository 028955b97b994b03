"""Answering from the page cache: ETag, Last-Modified, 304, and a render only on a miss.

A page is kept under its path. `CachedPagesMiddleware` answers a page the cache holds before
any routing (the router walks every staff and API route first: most of a hit's cost); on a
miss the route runs, renders in a worker thread and stores the page for the next requests.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from newsletter.web.pagecache import Page, PageCache, Rendered

HTML = "text/html; charset=utf-8"
# A sent edition is final (staff may still fix a typo): proxies may keep it five minutes.
PUBLIC = "public, max-age=300"
# Pages that change when an edition goes out: a proxy asks again after a minute.
SHORT = "public, max-age=60"
# Still being sent (or paused): may be cancelled, so every use revalidates.
REVALIDATE = "no-cache"


def html(body: str, cache_control: str) -> Rendered:
    return Rendered(body.encode(), HTML, cache_control)


async def cached_page(request: Request, render: Callable[[], Rendered]) -> Response:
    """The page at this path from the cache, or `render` (blocking: database, templates) run
    in a worker thread and kept. Routes using this are async: a hit costs no thread hop."""
    cache: PageCache = request.app.state.page_cache
    key = request.scope["path"]
    page = cache.peek(key)
    if page is None:
        page = await run_in_threadpool(cache.get, key, render)
    headers = request.headers
    if page.not_modified(headers.get("if-none-match"), headers.get("if-modified-since")):
        return Response(status_code=304, headers=page.headers)
    return Response(page.body, media_type=page.media_type, headers=page.headers)


class CachedPagesMiddleware:
    """Answers GET for a path whose page the cache holds and knows current; else routes."""

    def __init__(self, app: ASGIApp, cache: PageCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        page = self.cache.peek(scope["path"]) if _is_get(scope) else None
        if page is None:
            await self.app(scope, receive, send)
            return
        await _send(page, scope, send)


def _is_get(scope: Scope) -> bool:
    return scope["type"] == "http" and scope["method"] == "GET"


async def _send(page: Page, scope: Scope, send: Send) -> None:
    if_none_match = since = None
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            if_none_match = value.decode("latin-1")
        elif name == b"if-modified-since":
            since = value.decode("latin-1")
    if page.not_modified(if_none_match, since):
        # Fresh lists: middlewares outside add their headers to the list they are given.
        start = {"type": "http.response.start", "status": 304, "headers": [*page.raw_headers_304]}
        await send(start)
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [*page.raw_headers]})
    await send({"type": "http.response.body", "body": page.body})

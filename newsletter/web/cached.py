"""Answering from the page cache: ETag, Last-Modified, 304, and a render only on a miss."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from newsletter.web.pagecache import PageCache, Rendered

HTML = "text/html; charset=utf-8"
# A sent edition is final (staff may still fix a typo): proxies may keep it five minutes.
PUBLIC = "public, max-age=300"
# Pages that change when an edition goes out: a proxy asks again after a minute.
SHORT = "public, max-age=60"
# Still being sent (or paused): may be cancelled, so every use revalidates.
REVALIDATE = "no-cache"


def html(body: str, cache_control: str) -> Rendered:
    return Rendered(body.encode(), HTML, cache_control)


async def cached_page(request: Request, key: Hashable, render: Callable[[], Rendered]) -> Response:
    """Answer from the cache; on a miss run `render` (blocking: database, templates) in a
    worker thread. The routes using this are async so that a hit costs no thread hop."""
    cache: PageCache = request.app.state.page_cache
    page = cache.peek(key)
    if page is None:
        page = await run_in_threadpool(cache.get, key, render)
    if page.not_modified(request.headers):
        return Response(status_code=304, headers=page.headers)
    return Response(page.body, media_type=page.media_type, headers=page.headers)

"""Render once, serve many: public pages kept as bytes until the content they show changes.

The archive pages, the archive index, the feed and the subscribe form are the same bytes for
every reader of a language. Each process keeps them, bounded by size, keyed by page, and
tagged with the content version they were rendered at (the `content_version` row, raised by
database triggers on every edit, whoever makes it: see migration 0006). The version is read
at most every `recheck_every` seconds, and at once after a commit in this process; so an edit
made here shows on the next request, and one made by another process within that interval.

With `recheck_in_background` (the app's cache), a busy process does not hold requests for
that reading: when it falls due, the request is answered from the cache at once and the
version is read on a thread of its own (stale-while-revalidate). Answering every request
that arrived meanwhile through the router and the thread pool instead, five times a second,
made the cached pages' p99 50-90 ms against 5 ms without. A reading older than twice the
interval (an idle process) is still made before answering, so an edit made by another
process shows within at most twice the interval.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import cached_property

from sqlalchemy import Engine, select

from newsletter.models import ContentVersion

log = logging.getLogger(__name__)

RECHECK_EVERY = 0.2  # seconds: how often a busy process reads the content version
MAX_BYTES = 32 * 1024 * 1024  # ~1,000 edition pages of 30 KB


@dataclass(frozen=True)
class Rendered:
    """What a page's render function returns: the body and how it may be cached."""

    body: bytes
    media_type: str
    cache_control: str


@dataclass(frozen=True)
class Page:
    """A rendered page with its validators, ready to be sent again and again."""

    body: bytes
    media_type: str
    cache_control: str
    etag: str
    modified: datetime  # whole seconds, UTC

    @cached_property
    def headers(self) -> dict[str, str]:
        """The validators and caching rule, sent with the page and with a 304."""
        return {
            "ETag": self.etag,
            "Last-Modified": format_datetime(self.modified, usegmt=True),
            "Cache-Control": self.cache_control,
        }

    @cached_property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """What an ASGI response start carries for the full page (latin-1, as HTTP has it)."""
        return (
            (b"content-type", self.media_type.encode("latin-1")),
            (b"content-length", str(len(self.body)).encode()),
            *((k.lower().encode(), v.encode("latin-1")) for k, v in self.headers.items()),
        )

    @cached_property
    def raw_headers_304(self) -> tuple[tuple[bytes, bytes], ...]:
        return tuple((k.lower().encode(), v.encode("latin-1")) for k, v in self.headers.items())

    def not_modified(self, if_none_match: str | None, since: str | None) -> bool:
        """True when a conditional request already holds this page (RFC 9110 §13.1)."""
        if if_none_match is not None:
            tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
            return "*" in tags or self.etag in tags
        if since is None:
            return False
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError, OverflowError):
            return False  # not a date: answer in full
        if when.tzinfo is None:
            return False  # RFC 9110 dates are GMT; anything else is not one
        return self.modified <= when


def read_content_version(engine: Engine) -> int:
    """The current content version (0 before anything was ever edited)."""
    with engine.connect() as conn:
        version = conn.scalar(select(ContentVersion.version).where(ContentVersion.id == 1))
    return int(version or 0)


class PageCache:
    """Pages by key, each tagged with the content version it was rendered at; thread-safe.

    `peek` never blocks (the event loop calls it); `get` may read the version and render
    (call it from a worker thread). One thread renders a given page at a time.
    """

    def __init__(
        self,
        read_version: Callable[[], int],
        *,
        max_bytes: int = MAX_BYTES,
        recheck_every: float = RECHECK_EVERY,
        recheck_in_background: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_version = read_version
        self._max_bytes = max_bytes
        self._recheck_every = recheck_every
        self._in_background = recheck_in_background
        self._clock = clock
        self._lock = threading.Lock()
        self._pages: OrderedDict[Hashable, tuple[int, Page]] = OrderedDict()
        self._size = 0
        self._rendering: dict[Hashable, threading.Lock] = {}
        self._pinned: dict[Hashable, Page] = {}
        self._version: int | None = None
        self._checked_at = float("-inf")
        self._checking = False
        self._expired = False  # a commit here: read before answering, whatever the clock says

    def expire(self) -> None:
        """Something was committed in this process: read the version on the next request."""
        with self._lock:
            self._expired = True

    def pin(self, key: Hashable, rendered: Rendered) -> Page:
        """Keep a page that never changes while the process lives (a static file)."""
        page = self._pinned[key] = self._page(rendered, None)
        return page

    def peek(self, key: Hashable) -> Page | None:
        """The page if it is known to be current, without any I/O; else None (call `get`).
        In the background mode a reading that falls due is started here, and the page of
        the last reading is answered meanwhile."""
        pinned = self._pinned.get(key)
        if pinned is not None:
            return pinned
        with self._lock:
            if self._version is None or self._expired:
                return None
            due = self._clock() - self._checked_at
            if due >= self._recheck_every:
                if not self._in_background or due >= 2 * self._recheck_every:
                    return None  # the caller goes the slow way and reads it
                if not self._checking:
                    self._checking = True
                    self._checked_at = self._clock()
                    threading.Thread(target=self._recheck, daemon=True).start()
            entry = self._pages.get(key)
            if entry is None or entry[0] != self._version:
                return None
            self._pages.move_to_end(key)
            return entry[1]

    def get(self, key: Hashable, render: Callable[[], Rendered]) -> Page:
        """The current page, rendered now if needed; `render`'s exceptions pass through."""
        version = self.version()
        with self._lock:
            entry = self._pages.get(key)
            if entry is not None and entry[0] == version:
                self._pages.move_to_end(key)
                return entry[1]
            gate = self._rendering.setdefault(key, threading.Lock())
        with gate:  # one render per page; the others wait for it and take its result
            with self._lock:
                entry = self._pages.get(key)
                if entry is not None and entry[0] >= version:
                    return entry[1]
                previous = entry[1] if entry is not None else None
            # The version is read before the content: a change committed meanwhile makes
            # this page look outdated at once, never a new page look current.
            version = self.version()
            try:
                page = self._page(render(), previous)
            except BaseException:
                with self._lock:
                    self._rendering.pop(key, None)
                raise
            with self._lock:
                self._store(key, version, page)
                self._rendering.pop(key, None)
            return page

    def version(self) -> int:
        """The content version, read again when the last reading is too old."""
        with self._lock:
            if (
                self._version is not None
                and not self._expired
                and (self._checking or not self._recheck_due())
            ):
                return self._version  # fresh enough, or another thread is reading it now
            self._expired = False
            self._checking = True
            self._checked_at = self._clock()
        try:
            version = self._read_version()
        finally:
            with self._lock:
                self._checking = False
        return self._settle(version)

    def _recheck(self) -> None:
        """The background reading; on failure the pages stay and the next one tries again."""
        try:
            version = self._read_version()
        except Exception as exc:
            log.warning("page cache: could not read the content version: %s", exc)
            return
        finally:
            with self._lock:
                self._checking = False
        self._settle(version)

    def _settle(self, version: int) -> int:
        # Versions only rise: a reading that started before another finished never wins.
        with self._lock:
            self._version = max(version, self._version or 0)
            return self._version

    def __len__(self) -> int:
        return len(self._pages)

    @property
    def size(self) -> int:
        return self._size

    def _recheck_due(self) -> bool:
        return self._clock() - self._checked_at >= self._recheck_every

    @staticmethod
    def _page(rendered: Rendered, previous: Page | None) -> Page:
        etag = '"' + hashlib.blake2b(rendered.body, digest_size=12).hexdigest() + '"'
        if previous is not None and previous.etag == etag:
            modified = previous.modified  # same bytes: not modified since then
        else:
            modified = datetime.now(UTC).replace(microsecond=0)
        return Page(rendered.body, rendered.media_type, rendered.cache_control, etag, modified)

    def _store(self, key: Hashable, version: int, page: Page) -> None:
        old = self._pages.pop(key, None)
        if old is not None:
            self._size -= len(old[1].body)
        if len(page.body) > self._max_bytes:
            return  # larger than the whole cache: served, never kept
        self._pages[key] = (version, page)
        self._size += len(page.body)
        while self._size > self._max_bytes:
            _, (_, evicted) = self._pages.popitem(last=False)
            self._size -= len(evicted.body)

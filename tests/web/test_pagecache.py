"""Render once, serve many: cached public pages, their validators, and their invalidation."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from newsletter.articles import save_translation
from newsletter.db import make_engine, make_session_factory
from newsletter.editions import get_edition, import_edition_file
from newsletter.models import Edition, EditionStatus
from newsletter.paths import sample_data_dir
from newsletter.runtime import Runtime
from newsletter.web.pagecache import RECHECK_EVERY, PageCache, Rendered

PAGE = "/en/archive/2020-W05"
TITLE = "Communication with the USA has reached new highs"


@pytest.fixture
def sent_edition(runtime: Runtime) -> str:
    """The sample week, imported and marked sent (as a finished send leaves it)."""
    with runtime.session() as s:
        import_edition_file(s, sample_data_dir() / "2020-W05.yaml").status = EditionStatus.sent
    return "2020-W05"


def edit_title(session_scope, title: str) -> None:  # type: ignore[no-untyped-def]
    with session_scope() as s:
        edition = get_edition(s, "2020-W05")
        body = edition.articles[0].translation("en").body
        save_translation(s, edition, "us-visit", "en", title=title, body=body)


def test_editing_an_article_of_a_sent_edition_shows_at_once(
    client: TestClient, runtime: Runtime, sent_edition: str
) -> None:
    """Scenario: staff fix a title of a sent edition: the next GET shows it, the ETag changes."""
    first = client.get(PAGE)
    assert first.status_code == 200 and TITLE in first.text
    again = client.get(PAGE)
    assert again.headers["etag"] == first.headers["etag"]  # served from what was rendered
    feed = client.get("/en/archive.atom")
    edit_title(runtime.session, "Talks with the USA went well")
    assert "Talks with the USA went well" in client.get("/en/archive.atom").text
    assert client.get("/en/archive.atom").headers["etag"] != feed.headers["etag"]
    after = client.get(PAGE)
    assert after.status_code == 200
    assert "Talks with the USA went well" in after.text and TITLE not in after.text
    assert after.headers["etag"] != first.headers["etag"]
    # The other languages did not change: same bytes, same validator.
    ru = [client.get("/ru/archive/2020-W05").headers["etag"] for _ in range(2)]
    assert ru[0] == ru[1]


def test_another_process_edit_shows_within_the_recheck_interval(
    client: TestClient, db_url: str, sent_edition: str
) -> None:
    """Scenario: the edit comes through another connection pool (another process, the CLI):
    the page changes once the cache has read the content version again: at most twice the
    recheck interval later."""
    before = client.get(PAGE)
    other = make_engine(db_url)
    try:
        edit_title(lambda: _scope(make_session_factory(other)), "Edited elsewhere")
    finally:
        other.dispose()
    time.sleep(2 * RECHECK_EVERY + 0.05)  # a busy process reads it sooner: see below
    after = client.get(PAGE)
    assert "Edited elsewhere" in after.text
    assert after.headers["etag"] != before.headers["etag"]


def _scope(factory):  # type: ignore[no-untyped-def]
    from newsletter.db import session_scope

    return session_scope(factory)


def test_an_edition_going_out_appears_in_the_archive_index(
    client: TestClient, runtime: Runtime, sent_edition: str
) -> None:
    """Scenario: the index was cached; the sending engine's set-based UPDATE marks another
    week sent: the next GET of the index lists it."""
    with runtime.session() as s:
        s.add(Edition(week="2020-W06", status=EditionStatus.sending, languages=["en"]))
    assert "/en/archive/2020-W06" in client.get("/en/archive/").text
    with runtime.session() as s:
        s.execute(
            update(Edition).where(Edition.week == "2020-W06").values(status=EditionStatus.cancelled)
        )
    assert "/en/archive/2020-W06" not in client.get("/en/archive/").text
    assert client.get("/en/archive/2020-W06").status_code == 404


def test_sending_progress_does_not_throw_pages_away(
    client: TestClient, runtime: Runtime, sent_edition: str
) -> None:
    """Scenario: counters and timestamps of an edition change all through a send: the page
    keeps its validator (only what a page shows raises the content version)."""
    first = client.get(PAGE).headers["etag"]
    cache = client.app.state.page_cache  # type: ignore[attr-defined]
    version = cache.version()
    with runtime.session() as s:
        edition = s.scalar(select(Edition).where(Edition.week == "2020-W05"))
        assert edition is not None
        edition.sent_count += 10
    assert cache.version() == version
    assert client.get(PAGE).headers["etag"] == first


def test_conditional_requests(client: TestClient, sent_edition: str) -> None:
    """Scenario: a browser or proxy revalidates: 304 with no body when it holds the page."""
    for path in (PAGE, "/en/archive/", "/en/", "/en/archive.atom"):
        page = client.get(path)
        etag, modified = page.headers["etag"], page.headers["last-modified"]
        hit = client.get(path, headers={"If-None-Match": etag})
        assert (hit.status_code, hit.content) == (304, b"")
        assert hit.headers["etag"] == etag
        assert hit.headers["cache-control"] == page.headers["cache-control"]
        assert client.get(path, headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
        assert client.get(path, headers={"If-None-Match": "*"}).status_code == 304
        assert client.get(path, headers={"If-Modified-Since": modified}).status_code == 304
        # Not what the client holds, or nonsense: the full page.
        for headers in (
            {"If-None-Match": '"0123456789abcdef01234567"'},
            {"If-None-Match": etag.strip('"')},  # unquoted is another tag
            {"If-None-Match": '"x", ' * 2000 + '"y"'},
            {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"},
            {"If-Modified-Since": "yesterday"},
            {"If-Modified-Since": "Sun, 06 Nov 1994 08:49:37"},  # no zone
            {"If-Modified-Since": "Ѕun, 06 Nov 2094 08:49:37 GMT".encode()},  # Cyrillic Ѕ
            # If-None-Match decides when both are sent (RFC 9110 §13.2.2).
            {"If-None-Match": '"other"', "If-Modified-Since": modified},
        ):
            response = client.get(path, headers=headers)
            assert response.status_code == 200, headers
            assert response.content == page.content


def test_cache_headers(client: TestClient, runtime: Runtime, sent_edition: str) -> None:
    """Scenario: a proxy in front may keep sent editions and the form; an edition still
    being sent is revalidated every time (it could be cancelled)."""
    assert client.get(PAGE).headers["cache-control"] == "public, max-age=300"
    assert client.get("/ru/").headers["cache-control"] == "public, max-age=300"
    assert client.get("/ru/archive/").headers["cache-control"] == "public, max-age=60"
    with runtime.session() as s:
        s.execute(
            update(Edition).where(Edition.week == "2020-W05").values(status=EditionStatus.sending)
        )
    sending = client.get(PAGE)
    assert sending.status_code == 200
    assert sending.headers["cache-control"] == "no-cache"
    # Answered from the cache before any routing, yet with the security headers and HEAD.
    hit = client.get("/ru/")
    assert hit.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in hit.headers
    head = client.head("/ru/")
    assert (head.status_code, head.content, head.headers["etag"]) == (200, b"", hit.headers["etag"])
    css = client.get("/static/site.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert css.headers["x-content-type-options"] == "nosniff"
    assert (
        client.get("/static/site.css", headers={"If-None-Match": css.headers["etag"]}).status_code
        == 304
    )
    # Pages for one person are never kept by anyone.
    assert client.get("/unsubscribe/nonsense").headers["cache-control"] == "no-store"


def test_unknown_weeks_are_not_kept(client: TestClient, sent_edition: str) -> None:
    """Scenario: a crawler asks for many weeks that do not exist: 404s, and none is cached."""
    cache = client.app.state.page_cache  # type: ignore[attr-defined]
    client.get(PAGE)
    held = len(cache)
    for week in ("2020-W06", "2099-W01", "2020-w05", "2020-W5", "%00", "2020-W05x", "ⅱ020-W05"):
        assert client.get(f"/en/archive/{week}").status_code == 404
    assert len(cache) == held


# --- the cache object itself -----------------------------------------------------------------


def test_cache_is_bounded_by_size() -> None:
    """Scenario: more pages than fit: the least recently used go first, the size holds."""
    cache = PageCache(lambda: 1, max_bytes=1000)
    for n in range(20):
        cache.get(n, lambda: Rendered(b"x" * 300, "text/plain", "no-cache"))
        cache.get(0, lambda: Rendered(b"never rendered again", "text/plain", "no-cache"))
    assert cache.size <= 1000 and len(cache) == 3
    assert cache.peek(0) is not None and cache.peek(0).body == b"x" * 300  # type: ignore[union-attr]
    assert cache.peek(1) is None


def test_one_render_for_many_concurrent_requests() -> None:
    """Scenario: 20 requests for a page nobody rendered yet arrive together: it renders once."""
    calls: list[int] = []

    def render() -> Rendered:
        calls.append(1)
        time.sleep(0.05)
        return Rendered(b"page", "text/plain", "no-cache")

    cache = PageCache(lambda: 7)
    threads = [threading.Thread(target=cache.get, args=("k", render)) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1


def test_a_failed_render_is_not_kept() -> None:
    """Scenario: rendering raises (a 404): the error passes through and nothing is stored."""
    cache = PageCache(lambda: 1)

    def fail() -> Rendered:
        raise LookupError("no such page")

    with pytest.raises(LookupError):
        cache.get("missing", fail)
    assert len(cache) == 0 and cache.peek("missing") is None


def test_version_is_read_at_most_once_per_interval() -> None:
    """Scenario: a busy process reads the content version once per interval, not per hit."""
    reads: list[int] = []
    now = [100.0]

    def read() -> int:
        reads.append(1)
        return 5

    cache = PageCache(read, recheck_every=1.0, clock=lambda: now[0])
    cache.get("k", lambda: Rendered(b"a", "text/plain", "no-cache"))
    for _ in range(100):
        assert cache.peek("k") is not None
    assert len(reads) == 1
    now[0] += 1.5
    assert cache.peek("k") is None  # due: the caller goes the slow way and reads again
    cache.get("k", lambda: Rendered(b"b", "text/plain", "no-cache"))
    assert len(reads) == 2
    cache.expire()  # a commit in this process
    assert cache.peek("k") is None


def test_a_busy_process_reads_the_version_in_the_background() -> None:
    """Scenario: requests keep coming when the version reading falls due: they are answered
    from the cache at once while one reading runs on another thread, and the page changes
    once it is done; an idle process (its reading twice the interval old) and a commit in
    this process read before answering."""
    reads: list[int] = []
    version = [5]
    reading = threading.Event()
    now = [100.0]

    def read() -> int:
        reads.append(1)
        if len(reads) == 2:
            assert reading.wait(10)  # held until the test has asked meanwhile
        return version[0]

    cache = PageCache(read, recheck_every=1.0, recheck_in_background=True, clock=lambda: now[0])
    cache.get("k", lambda: Rendered(b"a", "text/plain", "no-cache"))
    version[0] = 6  # another process edits
    now[0] += 1.5  # due, not yet twice the interval
    for _ in range(10):  # answered at once, also while the reading is under way
        assert cache.peek("k").body == b"a"  # type: ignore[union-attr]
    reading.set()
    deadline = time.monotonic() + 10
    while cache.peek("k") is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.peek("k") is None  # version 6 is known: the page of version 5 is out of date
    assert len(reads) == 2  # one reading for all of those requests
    assert cache.get("k", lambda: Rendered(b"b", "text/plain", "no-cache")).body == b"b"
    assert len(reads) == 2

    now[0] += 2.5  # an idle process: the reading is too old to answer from
    assert cache.peek("k") is None
    cache.get("k", lambda: Rendered(b"c", "text/plain", "no-cache"))
    assert len(reads) == 3
    cache.expire()  # a commit in this process, just after a reading
    assert cache.peek("k") is None
    cache.get("k", lambda: Rendered(b"d", "text/plain", "no-cache"))
    assert len(reads) == 4

"""The archive's Atom feed per language: valid Atom, one entry per sent edition."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from newsletter.editions import import_edition_file
from newsletter.models import EditionStatus, utcnow
from newsletter.paths import sample_data_dir
from newsletter.runtime import Runtime

ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SITE = "https://news.example.org"
# RFC 3339 date-time, as RFC 4287 §3.3 requires for atom:updated and atom:published.
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
TITLES = {
    "be": "Камунікацыя з ЗША дасягнула новых вышынь",
    "ru": "Коммуникация с США достигла новых высот",
    "en": "Communication with the USA has reached new highs",
}


def add_week(
    runtime: Runtime, tmp_path: Path, week: str, status: EditionStatus, days: int = 1
) -> None:
    """The sample edition under another week, in `status`, sent `days` days ago."""
    text = (sample_data_dir() / "2020-W05.yaml").read_text(encoding="utf-8")
    text = text.replace("week: 2020-W05", f"week: {week}")
    path = tmp_path / f"{week}.yaml"
    path.write_text(text, encoding="utf-8")
    with runtime.session() as s:
        edition = import_edition_file(s, path)
        edition.status = status
        if status is not EditionStatus.draft:
            edition.started_at = utcnow() - timedelta(days=days, minutes=5)
            edition.finished_at = edition.started_at + timedelta(minutes=5)


def rfc3339(text: str | None) -> datetime:
    assert text is not None and RFC3339.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def one(parent: etree._Element, name: str) -> etree._Element:
    """RFC 4287: exactly one such child."""
    found = parent.findall(ATOM + name)
    assert len(found) == 1, f"{parent.tag} has {len(found)} atom:{name}"
    return found[0]


def check_atom(body: bytes) -> etree._Element:
    """The rules of RFC 4287 a feed validator checks, on the parsed document."""
    feed = etree.fromstring(body)
    assert feed.tag == ATOM + "feed"
    for element in (feed, *feed.findall(ATOM + "entry")):
        identifier = one(element, "id").text or ""
        assert urlsplit(identifier).scheme == "https", identifier  # an absolute IRI
        assert (one(element, "title").text or "").strip()
        rfc3339(one(element, "updated").text)
        alternates = [
            (link.get("type"), link.get("hreflang"))
            for link in element.findall(ATOM + "link")
            if link.get("rel", "alternate") == "alternate"
        ]
        assert len(alternates) == len(set(alternates)), "one alternate per type and language"
        for link in element.findall(ATOM + "link"):
            assert urlsplit(link.get("href")).scheme == "https"
    assert feed.findall(ATOM + "author"), "a feed-level author covers every entry"
    for entry in feed.findall(ATOM + "entry"):
        content = one(entry, "content")
        assert content.get("type") == "html" and content.text
        rfc3339(one(entry, "published").text)
    ids = [e.findtext(ATOM + "id") for e in feed.findall(ATOM + "entry")]
    assert len(ids) == len(set(ids)), "entry ids are unique"
    return feed


@pytest.fixture
def editions(runtime: Runtime, tmp_path: Path) -> None:
    """Two sent weeks, one still sending, one draft, and one sent in English only."""
    add_week(runtime, tmp_path, "2020-W05", EditionStatus.sent, days=8)
    add_week(runtime, tmp_path, "2020-W06", EditionStatus.sent, days=1)
    add_week(runtime, tmp_path, "2020-W07", EditionStatus.sending)
    add_week(runtime, tmp_path, "2020-W08", EditionStatus.draft)


def test_feed_in_each_language_is_valid_atom_with_one_entry_per_sent_edition(  # type: ignore[no-untyped-def]
    client: TestClient, editions
) -> None:
    """Scenario: a feed reader subscribes to the archive in be, ru and en: valid Atom, the
    sent editions newest first with their articles in that language, each linking to its
    archive page (which answers), nothing still being sent and no draft."""
    for lang in ("be", "ru", "en"):
        response = client.get(f"/{lang}/archive.atom")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/atom+xml")
        feed = check_atom(response.content)
        assert feed.get(XML_LANG) == lang
        assert feed.findtext(ATOM + "id") == f"{SITE}/{lang}/archive/"
        links = {link.get("rel"): link.get("href") for link in feed.findall(ATOM + "link")}
        assert links == {
            "self": f"{SITE}/{lang}/archive.atom",
            "alternate": f"{SITE}/{lang}/archive/",
        }
        entries = feed.findall(ATOM + "entry")
        pages = [f"{SITE}/{lang}/archive/2020-W06", f"{SITE}/{lang}/archive/2020-W05"]
        assert [e.findtext(ATOM + "id") for e in entries] == pages
        newest = max(rfc3339(e.findtext(ATOM + "updated")) for e in entries)
        assert rfc3339(feed.findtext(ATOM + "updated")) == newest
        w06 = entries[0]
        assert w06.findtext(ATOM + "title").endswith(
            {"be": "3–9 лютага 2020", "ru": "3—9 февраля 2020 г.", "en": "3–9 February 2020"}[lang]
        )
        content = unescape(w06.findtext(ATOM + "content"))
        assert TITLES[lang] in content
        assert all(TITLES[other] not in content for other in TITLES if other != lang)
        assert {c.get("term") for c in w06.findall(ATOM + "category")} >= {"belarus-west"}
        for entry in entries:
            link = entry.find(ATOM + "link")
            assert link.get("href") == entry.findtext(ATOM + "id")
            assert client.get(link.get("href").removeprefix(SITE)).status_code == 200


def test_archive_pages_link_to_their_feed(client: TestClient, editions) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a browser or feed reader discovers the feed from the archive pages."""
    for lang in ("be", "ru", "en"):
        for page in (f"/{lang}/archive/", f"/{lang}/archive/2020-W05"):
            html = client.get(page).text
            assert re.search(
                rf'<link rel="alternate" type="application/atom\+xml" hreflang="{lang}" '
                rf'title="[^"]+" href="/{lang}/archive.atom">',
                html,
            ), page


def test_empty_feed_is_still_valid(client: TestClient) -> None:
    """Scenario: before the first send the feed is valid Atom with no entries."""
    response = client.get("/ru/archive.atom")
    assert response.status_code == 200
    feed = check_atom(response.content)
    assert feed.findall(ATOM + "entry") == []
    assert client.get("/ru/archive.atom").content == response.content  # stable bytes


def test_edition_in_one_language_appears_only_in_that_feed(  # type: ignore[no-untyped-def]
    client: TestClient, runtime: Runtime, tmp_path: Path
) -> None:
    """Scenario: an edition written and sent in English only, without a fallback: the
    English feed has it, the Belarusian one does not (its archive page would be 404)."""
    from sqlalchemy import delete, select

    from newsletter.models import ArticleTranslation, Edition

    add_week(runtime, tmp_path, "2020-W06", EditionStatus.sent)
    with runtime.session() as s:
        s.execute(delete(ArticleTranslation).where(ArticleTranslation.lang != "en"))
        s.scalars(select(Edition)).one().languages = ["en"]
    assert len(etree.fromstring(client.get("/en/archive.atom").content)) > 0
    be = check_atom(client.get("/be/archive.atom").content)
    assert be.findall(ATOM + "entry") == []


def test_hostile_staff_text_stays_text_in_the_feed(  # type: ignore[no-untyped-def]
    client: TestClient, runtime: Runtime, tmp_path: Path
) -> None:
    """Scenario: titles with markup, a CDATA end, an XML-forbidden control character and a
    subject override: the feed stays well-formed and shows them as literal text."""
    hostile = "<script>alert(1)</script> ]]> &amp; \x0b end"  # as the staff API may store it
    add_week(runtime, tmp_path, "2020-W06", EditionStatus.sent)
    from sqlalchemy import select

    from newsletter.models import ArticleTranslation, Edition

    with runtime.session() as s:
        s.scalars(select(Edition)).one().subjects = {"en": "Week <b>six</b> ]]>"}
        for text in s.scalars(select(ArticleTranslation).where(ArticleTranslation.lang == "en")):
            text.title = hostile
    response = client.get("/en/archive.atom")
    assert response.status_code == 200
    entry = check_atom(response.content).find(ATOM + "entry")
    assert entry.findtext(ATOM + "title") == "Week <b>six</b> ]]>"
    content = entry.findtext(ATOM + "content")  # the HTML, as a feed reader gets it
    assert "<script>" not in content and "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "\x0b" not in content and "&amp;amp;" in content


def test_feed_of_unknown_language_is_404(client: TestClient) -> None:
    """Scenario: guessed or hostile language codes get the 404 page, not a feed."""
    for lang in ("xx", "EN", "е n", "b%C3%A9"):
        assert client.get(f"/{lang}/archive.atom").status_code == 404

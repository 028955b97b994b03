"""Every link on every public page answers 200, in every language: an HTTP crawler.

It starts where a visitor starts (`/`, the form in each language) and where the emails and
the forms lead (the "check your mail" page after subscribing, the confirm and preference
pages of a reader's links, the pages after each of their buttons), follows every `<a href>`
and `<link href>` that stays on the site, and fetches each address once.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from newsletter.editions import import_edition_file
from newsletter.models import EditionStatus, utcnow
from newsletter.paths import sample_data_dir
from newsletter.runtime import Runtime
from newsletter.tokens import TokenPurpose, TokenSigner

SITE = "https://news.example.org"
LANGS = ("be", "ru", "en")


class Links(HTMLParser):
    """The href of every <a> and <link> of a page (forms post; they are not links)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("a", "link"):
            self.found.extend(value for name, value in attrs if name == "href" and value)


def links_of(page: str) -> list[str]:
    parser = Links()
    parser.feed(page)
    return parser.found


def on_site(base: str, href: str) -> str | None:
    """The absolute address of a link on this site, without its #fragment; None elsewhere."""
    url = urldefrag(urljoin(base, href)).url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.netloc != urlsplit(SITE).netloc:
        return None
    return url


class Crawler:
    """Fetches each address once (following redirects) and remembers what answered what."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.answers: dict[str, int] = {}
        self.found_on: dict[str, str] = {}
        self.pages = 0

    def page(self, base: str, response: httpx.Response) -> None:
        """Crawl from a page we were shown (also the answer to a POST)."""
        assert response.status_code in (200, 422), (base, response.status_code)
        self._follow(base, response.text)

    def _follow(self, base: str, html: str) -> None:
        queue = [(base, html)]
        while queue:
            at, text = queue.pop()
            self.pages += 1
            for href in links_of(text):
                url = on_site(at, href)
                if url is None or url in self.answers:
                    continue
                self.found_on[url] = at
                response = self.client.get(url, follow_redirects=True)
                self.answers[url] = response.status_code
                if response.status_code == 200 and "text/html" in response.headers.get(
                    "content-type", ""
                ):
                    queue.append((str(response.url), response.text))

    def broken(self) -> dict[str, str]:
        return {
            url: f"{code} (linked from {self.found_on[url]})"
            for url, code in self.answers.items()
            if code != 200
        }


@pytest.fixture
def crawler(client: TestClient) -> Iterator[Crawler]:
    yield Crawler(client)


@pytest.fixture
def sent_edition(runtime: Runtime) -> str:
    """The sample week as a finished send leaves it, so the archive lists it."""
    with runtime.session() as s:
        edition = import_edition_file(s, sample_data_dir() / "2020-W05.yaml")
        edition.status = EditionStatus.sent
        edition.started_at = edition.finished_at = utcnow()
    return "2020-W05"


def test_every_link_of_every_public_page_answers_200(  # type: ignore[no-untyped-def]
    client: TestClient, crawler: Crawler, sent_edition: str, make_subscriber, signer: TokenSigner
) -> None:
    """Scenario: a visitor, a new subscriber and a reader with their links click everything
    in every language (language switches included): nothing is 404, 405 or 500."""
    start = client.get("/", headers={"Accept-Language": "ru"}, follow_redirects=True)
    crawler.page(str(start.url), start)
    for lang in LANGS:
        crawler.page(f"{SITE}/{lang}/", client.get(f"/{lang}/"))
        crawler.page(f"{SITE}/{lang}/archive/{sent_edition}", client.get(f"/{lang}/archive/"))

        # After subscribing: the "check your mail" page (the page the issue found broken),
        # and the form again when something was wrong with it.
        posted = f"{SITE}/{lang}/subscribe"
        data = {"email": f"new-{lang}@example.org", "languages": [lang]}
        crawler.page(posted, client.post(f"/{lang}/subscribe", data=data))
        crawler.page(posted, client.post(f"/{lang}/subscribe", data={"email": "x"}))

        # A reader's links and the page after each button on them.
        pending = make_subscriber(f"pending-{lang}@example.org", lang, active=False)
        confirm = f"/confirm/{signer.make(TokenPurpose.confirm, pending)}"
        crawler.page(SITE + confirm, client.get(confirm))
        crawler.page(SITE + confirm, client.post(confirm))
        reader = make_subscriber(
            f"reader-{lang}@example.org", f"{lang},be" if lang != "be" else lang
        )
        link = f"/unsubscribe/{signer.make(TokenPurpose.unsubscribe, reader)}"
        crawler.page(SITE + link, client.get(link))
        crawler.page(SITE + link, client.post(f"{link}/preferences", data={}))  # refused: 422
        crawler.page(SITE + link, client.post(f"{link}/erase", data={}))  # no tick: 422
        crawler.page(SITE + link, client.post(link))  # unsubscribed
        crawler.page(SITE + link, client.post(f"{link}/erase", data={"confirm": "yes"}))

    assert crawler.broken() == {}
    # The crawl reached every language's form, "check your mail", archive, edition and feed.
    for lang in LANGS:
        for path in (
            f"/{lang}/",
            f"/{lang}/subscribed",
            f"/{lang}/archive/",
            f"/{lang}/archive/{sent_edition}",
            f"/{lang}/archive.atom",
        ):
            assert SITE + path in crawler.answers, path
    assert len(crawler.answers) > 20 and crawler.pages > 40


def test_check_your_mail_page_switches_language_to_itself(client: TestClient) -> None:
    """Scenario: the issue's case. After subscribing in Belarusian the reader switches to
    Russian and English: they read "check your mail" in that language, not a 405 page."""
    answer = client.post("/be/subscribe", data={"email": "a@example.org", "languages": ["be"]})
    assert answer.status_code == 200
    switches = [h for h in links_of(answer.text) if h in ("/ru/subscribed", "/en/subscribed")]
    assert sorted(switches) == ["/en/subscribed", "/ru/subscribed"]
    ru = client.get("/ru/subscribed")
    assert ru.status_code == 200 and '<html lang="ru">' in ru.text
    assert "Почти готово. Мы отправили вам письмо" in ru.text
    assert "/be/subscribed" in links_of(ru.text) and "/en/subscribed" in links_of(ru.text)
    assert client.get("/xx/subscribed").status_code == 404
    assert client.post("/ru/subscribed").status_code == 405  # a page, not an action


def test_pages_answering_a_post_never_link_to_a_post_only_address(  # type: ignore[no-untyped-def]
    client: TestClient, make_subscriber, signer: TokenSigner
) -> None:
    """Scenario: after each button (subscribe, confirm, unsubscribe, erase, a refused form)
    no link of the page is an address that only takes POST."""
    post_only = ("/subscribe", "/erase", "/preferences", "/export")
    pending = make_subscriber("p@example.org", "en", active=False)
    reader = make_subscriber("r@example.org", "ru")
    confirm = f"/confirm/{signer.make(TokenPurpose.confirm, pending)}"
    link = f"/unsubscribe/{signer.make(TokenPurpose.unsubscribe, reader)}"
    answers = [
        client.post("/en/subscribe", data={"email": "n@example.org", "languages": ["en"]}),
        client.post("/en/subscribe", data={"email": "", "languages": []}),
        client.post(confirm),
        client.post(f"{link}/preferences", data={}),
        client.post(link),
        client.post(f"{link}/erase", data={"confirm": "yes"}),
    ]
    for answer in answers:
        for href in links_of(answer.text):
            path = urlsplit(href).path
            assert not path.endswith(post_only), (answer.request.url, href)

"""The public archive: sent editions newest first, one edition per language, hreflang."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from newsletter.editions import import_edition_file
from newsletter.models import Edition, EditionStatus
from newsletter.paths import sample_data_dir
from newsletter.runtime import Runtime

TITLES = {"be": "Сітуацыя ў Беларусі", "ru": "Ситуация в Беларуси", "en": "Situation in Belarus"}
RANGES = {
    "be": "27 студзеня – 2 лютага 2020",
    "ru": "27 января — 2 февраля 2020 г.",
    "en": "27 January – 2 February 2020",
}


@pytest.fixture
def sample_edition(runtime: Runtime) -> str:
    """The sample week, imported and marked sent (as a finished send leaves it)."""
    with runtime.session() as s:
        edition = import_edition_file(s, sample_data_dir() / "2020-W05.yaml")
        edition.status = EditionStatus.sent
    return "2020-W05"


def add_edition(runtime: Runtime, week: str, status: EditionStatus) -> None:
    with runtime.session() as s:
        s.add(Edition(week=week, status=status, languages=["be", "ru", "en"]))


def test_archive_lists_sent_editions_newest_first(
    client: TestClient, runtime: Runtime, sample_edition: str
) -> None:
    """Scenario: the archive shows what went out, newest first, and hides drafts."""
    add_edition(runtime, "2020-W07", EditionStatus.sent)
    add_edition(runtime, "2020-W09", EditionStatus.draft)
    add_edition(runtime, "2020-W08", EditionStatus.scheduled)
    for lang in ("be", "ru", "en"):
        response = client.get(f"/{lang}/archive/")
        assert response.status_code == 200
        page = response.text
        assert f'<html lang="{lang}">' in page
        assert RANGES[lang] in page
        assert page.index(f"/{lang}/archive/2020-W07") < page.index(f"/{lang}/archive/2020-W05")
        assert "2020-W09" not in page and "2020-W08" not in page


def test_empty_archive(client: TestClient) -> None:
    """Scenario: before the first send the archive says there is nothing yet."""
    response = client.get("/ru/archive/")
    assert response.status_code == 200
    assert "Ещё не вышло ни одного выпуска." in response.text


def test_edition_page_in_each_language(
    client: TestClient, runtime: Runtime, sample_edition: str
) -> None:
    """Scenario: the "view in browser" link shows the week in each language, with alternates."""
    for lang in ("be", "ru", "en"):
        check_edition_page(client, runtime, sample_edition, lang)


def check_edition_page(
    client: TestClient, runtime: Runtime, sample_edition: str, lang: str
) -> None:
    response = client.get(f"/{lang}/archive/{sample_edition}")
    assert response.status_code == 200
    page = response.text
    assert f'<html lang="{lang}">' in page
    assert TITLES[lang] in page
    assert RANGES[lang] in page
    for other in ("be", "ru", "en"):
        assert (
            f'<link rel="alternate" hreflang="{other}" '
            f'href="https://news.example.org/{other}/archive/2020-W05">'
        ) in page
    assert f'href="/{"en" if lang != "en" else "be"}/archive/2020-W05"' in page  # the switch
    with runtime.session() as s:
        edition = s.scalar(select(Edition).where(Edition.week == sample_edition))
        assert page.count('<article class="topic"') == len(edition.articles)
        for article in edition.articles:
            assert article.translation(lang).title.split()[0] in page


def test_unknown_or_malformed_week_is_404(client: TestClient, sample_edition: str) -> None:
    """Scenario: a week that does not exist (or is not a week) gets the 404 page."""
    for week in ("2020-W06", "2020-W99", "nonsense", "2020-w05", "2020-W5", "<script>"):
        response = client.get(f"/en/archive/{week}")
        assert response.status_code == 404, week
        assert "Page not found" in response.text
        assert "<script>" not in response.text
    assert client.get("/xx/archive/2020-W05").status_code == 404


def test_draft_edition_is_not_public(client: TestClient, runtime: Runtime) -> None:
    """Scenario: a draft's address is guessed: 404, nothing leaks before the send."""
    with runtime.session() as s:
        import_edition_file(s, sample_data_dir() / "2020-W05.yaml")
    assert client.get("/be/archive/2020-W05").status_code == 404
    assert "2020-W05" not in client.get("/be/archive/").text


def test_a_week_within_one_month_reads_the_same_in_archive_and_email(
    client: TestClient, runtime: Runtime
) -> None:
    """Scenario: 2020-W06 (3-9 February) reads "3–9 February 2020" on every page and in the
    email, and the archive puts each trend line where the email does: after the topic,
    before the title."""
    import html
    from email import policy
    from email.parser import BytesParser

    from newsletter.i18n import trend_label
    from newsletter.messages import Recipient, prepare_edition_messages

    text = (sample_data_dir() / "2020-W05.yaml").read_text(encoding="utf-8")
    path = runtime.settings.outbox.parent / "2020-W06.yaml"
    path.write_text(text.replace("week: 2020-W05", "week: 2020-W06"), encoding="utf-8")
    with runtime.session() as s:
        import_edition_file(s, path).status = EditionStatus.sent
    ranges = {"be": "3–9 лютага 2020", "ru": "3—9 февраля 2020 г.", "en": "3–9 February 2020"}
    for lang, wanted in ranges.items():
        assert wanted in client.get(f"/{lang}/archive/").text
        page = client.get(f"/{lang}/archive/2020-W06").text
        assert wanted in page
        with runtime.session() as s:
            edition = s.scalar(select(Edition).where(Edition.week == "2020-W06"))
            template = prepare_edition_messages(s, runtime.settings, edition, [lang])[(lang,)]
            article = edition.articles[0].translation(lang)
            label = trend_label(edition.articles[0].trend, lang)
        raw = template.render(
            Recipient("a@example.org", None, "https://x.example/u", "<1@example.org>")
        )
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert message["Subject"].endswith(wanted)
        mail_html = html.unescape(message.get_body(("html",)).get_content())
        assert wanted in mail_html
        for document in (page, mail_html):
            assert document.index(label) < document.index(article.title), lang

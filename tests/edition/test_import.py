"""Importing edition files: the sample, re-imports, bad files, completeness."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.editions import (
    check_sendable,
    get_edition,
    import_edition,
    import_edition_file,
    missing_translations,
    seed_topics,
)
from newsletter.errors import EditionIncomplete, ImportFileError, NotFound
from newsletter.models import Article, ArticleTranslation, Edition, Topic, Trend


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_sample_edition_imports(session: Session, sample_path: Path) -> None:
    """The sample week imports with its article, texts in three languages and topics."""
    edition = import_edition_file(session, sample_path)
    session.commit()
    again = get_edition(session, "2020-W05")
    assert again.id == edition.id
    assert again.languages == ["be", "ru", "en"]
    [article] = again.articles
    assert article.slug == "us-visit" and article.trend is Trend.improved
    assert article.topic.names["be"] == "Адносіны Беларусі і Захаду"
    assert article.translation("en").title == "Communication with the USA has reached new highs"
    assert missing_translations(again) == {}
    check_sendable(again, None)
    assert _count(session, Topic) == 6


def test_seed_topics_is_idempotent(session: Session) -> None:
    """Seeding twice adds the glossary's topics once and keeps edited names."""
    assert seed_topics(session) == 6
    topic = session.scalar(select(Topic).where(Topic.slug == "economy"))
    topic.names = {**topic.names, "en": "The economy"}
    assert seed_topics(session) == 0
    assert session.scalar(select(Topic.names).where(Topic.slug == "economy"))["en"] == "The economy"


def test_reimport_updates_and_keeps(
    session: Session, sample_data: dict[str, Any], write_edition: Callable[..., Path]
) -> None:
    """Re-importing updates articles by slug, adds new ones and removes nothing silently."""
    import_edition_file(session, write_edition(sample_data))
    session.commit()
    changed = copy.deepcopy(sample_data)
    changed["articles"][0]["trend"] = "unchanged"
    changed["articles"][0]["translations"]["en"]["title"] = "A new title"
    del changed["articles"][0]["translations"]["ru"]
    changed["subject"] = {"en": "Our special issue"}
    changed["topics"] = {"health": {"be": "Ахова здароўя", "ru": "Здравоохранение", "en": "Health"}}
    changed["articles"].append(
        {
            "slug": "hospitals",
            "topic": "health",
            "trend": "worsened",
            "translations": {"en": {"title": "Hospitals", "body": "Short *text*."}},
        }
    )
    result = import_edition(session, write_edition(changed, "v2.yaml"))
    session.commit()
    assert (result.created, result.updated, result.added) == (False, ["us-visit"], ["hospitals"])
    assert _count(session, Edition) == 1 and _count(session, Article) == 2
    edition = get_edition(session, "2020-W05")
    first = edition.articles[0]
    assert first.trend is Trend.unchanged
    assert first.translation("en").title == "A new title"
    assert first.translation("ru") is not None  # kept: the file no longer had it
    assert edition.subjects == {"en": "Our special issue"}
    assert missing_translations(edition) == {"hospitals": ["be", "ru"]}

    only_new = copy.deepcopy(changed)
    only_new["articles"] = only_new["articles"][1:]
    result = import_edition(session, write_edition(only_new, "v3.yaml"))
    assert result.kept == ["us-visit"]
    assert _count(session, Article) == 2


def test_incomplete_edition_needs_a_fallback(
    session: Session, sample_data: dict[str, Any], write_edition: Callable[..., Path]
) -> None:
    """An article lacking a language blocks sending unless a covering fallback is chosen."""
    del sample_data["articles"][0]["translations"]["be"]
    edition = import_edition_file(session, write_edition(sample_data))
    assert missing_translations(edition) == {"us-visit": ["be"]}
    with pytest.raises(EditionIncomplete, match="us-visit: be"):
        check_sendable(edition, None)
    check_sendable(edition, "en")
    with pytest.raises(EditionIncomplete, match="fallback"):
        check_sendable(edition, "be")
    check_sendable(edition, None, languages=["ru", "en"])


BAD = [
    ("week", lambda d: d.update(week="2020-W99"), "field 'week'"),
    (
        "trend",
        lambda d: d["articles"][0].update(trend="better"),
        "article 'us-visit': field 'trend'",
    ),
    (
        "title",
        lambda d: d["articles"][0]["translations"]["ru"].update(title=""),
        "article 'us-visit': field 'translations.ru.title'",
    ),
    (
        "body",
        lambda d: d["articles"][0]["translations"]["be"].pop("body"),
        "article 'us-visit': field 'translations.be.body'",
    ),
    (
        "topic",
        lambda d: d["articles"][0].update(topic="sport"),
        "article 'us-visit': field 'topic'",
    ),
    ("slug", lambda d: d["articles"][0].update(slug="Bad Slug"), "article #1: field 'slug'"),
    (
        "language",
        lambda d: d["articles"][0]["translations"].update(de={"title": "x", "body": "y"}),
        "article 'us-visit': field 'translations.de'",
    ),
    (
        "subject",
        lambda d: d.update(subject={"en": "Hi\r\nBcc: victim@example.org"}),
        "field 'subject.en'",
    ),
]


@pytest.mark.parametrize(("case", "breaker", "where"), BAD, ids=[b[0] for b in BAD])
def test_bad_file_changes_nothing(
    session: Session,
    sample_data: dict[str, Any],
    write_edition: Callable[..., Path],
    case: str,
    breaker: Callable[[dict[str, Any]], None],
    where: str,
) -> None:
    """A bad file is refused naming the file, the article and the field; nothing is written."""
    import_edition_file(session, write_edition(sample_data, "good.yaml"))
    session.commit()
    before = [(t.lang, t.title) for t in session.scalars(select(ArticleTranslation))]
    extra = copy.deepcopy(sample_data["articles"][0])
    extra["slug"] = "second"
    sample_data["articles"].append(extra)  # a valid new article that must not be written
    breaker(sample_data)
    path = write_edition(sample_data, "bad.yaml")
    with pytest.raises(ImportFileError) as info:
        import_edition_file(session, path)
    message = str(info.value)
    assert str(path) in message
    assert where in message
    session.commit()
    assert _count(session, Article) == 1
    assert [(t.lang, t.title) for t in session.scalars(select(ArticleTranslation))] == before


def test_unreadable_files(session: Session, write_edition: Callable[..., Path]) -> None:
    """Broken YAML, a list instead of a map and a missing file each give one clear error."""
    with pytest.raises(ImportFileError, match=r"line \d+: not valid YAML"):
        import_edition_file(session, write_edition("week: [2020-W05\narticles: x\n"))
    with pytest.raises(ImportFileError, match="must be a YAML map"):
        import_edition_file(session, write_edition("- 1\n- 2\n"))
    with pytest.raises(ImportFileError, match="cannot read"):
        import_edition_file(session, Path("/nonexistent/edition.yaml"))
    with pytest.raises(NotFound):
        get_edition(session, "2020-W06")

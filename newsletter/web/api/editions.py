"""/api/editions: editions with completeness, their articles, translation edits, import."""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy import select

from newsletter import articles
from newsletter.models import Article, Edition, EditionStatus, Trend
from newsletter.web.admin.editions import completeness, load_edition
from newsletter.web.api.routing import ApiRoute, ApiStaff, utc
from newsletter.web.api.schemas import (
    ArticleOut,
    Completeness,
    EditionDetail,
    EditionImport,
    EditionOut,
    Language,
    TranslationIn,
    TranslationOut,
    Week,
)
from newsletter.web.deps import SessionDep

router = APIRouter(prefix="/editions", tags=["editions"], route_class=ApiRoute)
WeekPath = Annotated[str, Path(pattern=r"^[0-9]{4}-W[0-9]{2}$", examples=["2020-W05"])]
Slug = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$", examples=["economy"])]
LanguagePath = Annotated[str, Path(pattern="^(be|ru|en)$", examples=["be"])]
_ = (Week, Language)  # the shared field types of the schemas, imported for readers


def edition_out(edition: Edition) -> EditionOut:
    return EditionOut(
        week=edition.week,
        status=EditionStatus(edition.status).value,
        languages=list(edition.languages or []),
        articles=len(edition.articles),
        scheduled_at=utc(edition.scheduled_at),
        started_at=utc(edition.started_at),
        finished_at=utc(edition.finished_at),
        planned=edition.planned_count,
        sent=edition.sent_count,
        failed=edition.failed_count,
        skipped=edition.skipped_count,
        completeness={
            lang: Completeness(**value)  # type: ignore[arg-type]
            for lang, value in completeness(edition).items()
        },
    )


def article_out(article: Article) -> ArticleOut:
    have = {
        t.lang: TranslationOut(lang=t.lang, title=t.title, body=t.body)
        for t in article.translations
    }
    return ArticleOut(
        slug=article.slug,
        topic=article.topic.slug,
        trend=Trend(article.trend).value,
        position=article.position,
        translations=have,
        missing=[lang for lang in ("be", "ru", "en") if lang not in have],
    )


@router.get("", response_model=list[EditionOut], summary="Editions, newest week first")
def list_editions(session: SessionDep, staff: ApiStaff) -> list[EditionOut]:
    return [edition_out(e) for e in session.scalars(select(Edition).order_by(Edition.week.desc()))]


@router.get("/{week}", response_model=EditionDetail, summary="An edition with its articles")
def get_edition(week: WeekPath, session: SessionDep, staff: ApiStaff) -> EditionDetail:
    edition = load_edition(session, week)
    return EditionDetail(
        **edition_out(edition).model_dump(),
        subjects=dict(edition.subjects or {}),
        items=[article_out(a) for a in edition.articles],
    )


@router.post(
    "",
    response_model=EditionOut,
    status_code=201,
    summary="Import or update an edition from its YAML text",
    responses={409: {"description": "The edition is being sent or was sent"}},
)
def import_edition(body: EditionImport, session: SessionDep, staff: ApiStaff) -> EditionOut:
    from newsletter.editions import import_edition_file

    # The importer reads files (and names the file in its errors): hand it a private one.
    with tempfile.TemporaryDirectory() as folder:
        path = FilePath(folder) / "edition.yaml"
        path.write_text(body.content, encoding="utf-8")
        edition = import_edition_file(session, path)
    return edition_out(edition)


@router.get("/{week}/articles", response_model=list[ArticleOut], summary="The week's articles")
def list_articles(week: WeekPath, session: SessionDep, staff: ApiStaff) -> list[ArticleOut]:
    return [article_out(a) for a in load_edition(session, week).articles]


@router.get("/{week}/articles/{slug}", response_model=ArticleOut, summary="One article")
def get_article(week: WeekPath, slug: Slug, session: SessionDep, staff: ApiStaff) -> ArticleOut:
    return article_out(articles.get_article(load_edition(session, week), slug))


@router.put(
    "/{week}/articles/{slug}/{lang}",
    response_model=TranslationOut,
    summary="Write an article's title and Markdown body in one language",
    responses={409: {"description": "The edition is being sent"}},
)
def put_translation(
    week: WeekPath,
    slug: Slug,
    lang: LanguagePath,
    body: TranslationIn,
    session: SessionDep,
    staff: ApiStaff,
) -> TranslationOut:
    edition = load_edition(session, week)
    translation = articles.save_translation(
        session, edition, slug, lang, title=body.title, body=body.body
    )
    return TranslationOut(lang=translation.lang, title=translation.title, body=translation.body)

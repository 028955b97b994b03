"""Staff edits of an article's text in one language (the admin editor and the API)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from newsletter.errors import IllegalTransition, NotFound, ValidationError
from newsletter.languages import LANGUAGES
from newsletter.models import Article, ArticleTranslation, Edition, EditionStatus

MAX_TITLE = 500
MAX_BODY = 100_000
# Readers of a running send must all get the same text: no edits until it ends or is cancelled.
_FROZEN = (EditionStatus.sending, EditionStatus.paused)


def get_article(edition: Edition, slug: str) -> Article:
    for article in edition.articles:
        if article.slug == slug:
            return article
    raise NotFound(f"edition {edition.week} has no article {slug!r}")


def _clean(text: str, what: str, limit: int) -> str:
    if "\x00" in text:
        raise ValidationError(f"the {what} contains a NUL character")
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise ValidationError(f"the {what} is empty")
    if len(text) > limit:
        raise ValidationError(f"the {what} is longer than {limit} characters")
    return text


def save_translation(
    session: Session, edition: Edition, slug: str, lang: str, *, title: str, body: str
) -> ArticleTranslation:
    """Create or replace an article's title and Markdown body in one language."""
    if lang not in LANGUAGES:
        raise ValidationError(f"unknown language {lang!r}: choose from be, ru, en")
    if edition.status in _FROZEN:
        raise IllegalTransition(
            f"edition {edition.week} is {edition.status.value}: cancel the send to edit it"
        )
    article = get_article(edition, slug)
    clean_title = " ".join(_clean(title, "title", MAX_TITLE).split())
    clean_body = _clean(body, "body", MAX_BODY)
    translation = article.translation(lang)
    if translation is None:
        translation = ArticleTranslation(lang=lang, title=clean_title, body=clean_body)
        article.translations.append(translation)
    else:
        translation.title, translation.body = clean_title, clean_body
    session.flush()
    return translation

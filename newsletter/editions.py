"""Editions: ISO-week math, importing a week's articles, topics, completeness checks.

Import rules (the edition YAML of sample_data/2020-W05.yaml):
- all-or-nothing: the whole file is validated before anything is written, and the writes run
  in a savepoint, so a bad file changes nothing;
- re-importing a week updates its articles by slug (topic, trend, position, and the texts of
  the languages in the file); nothing is removed: articles or translations that the file no
  longer holds are kept and reported (`ImportResult.kept`), so staff delete them on purpose;
- an edition that is sending, paused or sent cannot be re-imported (readers would get
  different texts for the same week);
- bounded: files over MAX_FILE_BYTES, YAML anchors and aliases (`&a`, `*a`: a few hundred
  bytes can expand to gigabytes), nesting deeper than the parser's stack and texts with NUL
  or other control characters are refused; an error quotes at most ECHO_CHARS of the input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.errors import (
    Conflict,
    EditionIncomplete,
    ImportFileError,
    NotFound,
    ValidationError,
)
from newsletter.languages import LANGUAGES, parse_fallback
from newsletter.models import Article, ArticleTranslation, Edition, EditionStatus, Topic, Trend
from newsletter.paths import sample_data_dir

# ASCII digits only: "２０２０-W05" (fullwidth) is not a week, whatever int() would make of it.
_WEEK_RE = re.compile(r"^\s*(\d{4})-?W(\d{1,2})\s*$", re.IGNORECASE | re.ASCII)
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_LOCKED = (EditionStatus.sending, EditionStatus.paused, EditionStatus.sent)
MAX_TITLE = 500
MAX_FILE_BYTES = 2 * 1024 * 1024  # a long week in three languages is ~100 KB
MAX_POSITION = 1_000_000
ECHO_CHARS = 60  # how much of a bad value an error message quotes
MAX_SUBJECT = 200


# --------------------------------------------------------------------------- ISO weeks


@dataclass(frozen=True, order=True)
class IsoWeek:
    """An ISO 8601 week: Monday to Sunday, numbered within its ISO year."""

    year: int
    week: int

    def __post_init__(self) -> None:
        try:
            date.fromisocalendar(self.year, self.week, 1)
        except ValueError as exc:
            raise ValidationError(f"{self.year}-W{self.week:02d} is not an ISO week") from exc

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 7)

    def previous(self) -> IsoWeek:
        return week_of(self.monday - timedelta(days=7))

    def next(self) -> IsoWeek:
        return week_of(self.monday + timedelta(days=7))

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"


def parse_week(text: str) -> IsoWeek:
    """'2020-W05' (or '2020W5') -> IsoWeek; anything else is a ValidationError."""
    match = _WEEK_RE.match(str(text))
    if not match:
        raise ValidationError(f"a week looks like 2020-W05, not {text!r}")
    return IsoWeek(int(match.group(1)), int(match.group(2)))


def week_of(moment: date | datetime) -> IsoWeek:
    """The ISO week holding a date (a datetime counts by its own calendar date)."""
    day = moment.date() if isinstance(moment, datetime) else moment
    iso = day.isocalendar()
    return IsoWeek(iso.year, iso.week)


# --------------------------------------------------------------------------- topics


def load_glossary(path: Path | None = None) -> dict[str, Any]:
    """The reference wording shipped with the package (topics, trends, strings)."""
    with open(path or sample_data_dir() / "glossary.yaml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def seed_topics(session: Session, glossary: Mapping[str, Any] | None = None) -> int:
    """Add the glossary's topics that are missing; names already stored are kept. Idempotent."""
    topics = (glossary or load_glossary())["topics"]
    existing = set(session.scalars(select(Topic.slug)))
    added = 0
    for slug, names in topics.items():
        if slug not in existing:
            session.add(Topic(slug=slug, names=dict(names)))
            added += 1
    if added:
        session.flush()
    return added


# --------------------------------------------------------------------------- import


@dataclass
class _TextIn:
    title: str
    body: str


@dataclass
class _ArticleIn:
    slug: str
    topic: str
    trend: Trend
    position: int
    translations: dict[str, _TextIn]


@dataclass
class _EditionIn:
    week: IsoWeek
    languages: list[str]
    subjects: dict[str, str]
    topics: dict[str, dict[str, str]]
    articles: list[_ArticleIn]


@dataclass
class ImportResult:
    """What an import did, for the CLI and the admin to report."""

    edition: Edition
    created: bool
    added: list[str] = field(default_factory=list)  # article slugs
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # in the database, not in the file
    topics_added: list[str] = field(default_factory=list)


def echo(value: Any) -> str:
    """A bad value as an error quotes it: repr, cut to ECHO_CHARS."""
    text = repr(value)
    return text if len(text) <= ECHO_CHARS else text[: ECHO_CHARS - 1] + "…"


def _names(keys: Iterable[Any]) -> str:
    """The first of some unknown keys, quoted (keys may be of any YAML type)."""
    return echo(sorted(keys, key=str)[0])


# Characters a text may hold besides printable ones: tab and line breaks.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader refusing anchors and aliases: an edition never needs them, a bomb does."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.MarkedYAMLError(
                problem="anchors and aliases (& and *) are not allowed",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


class _Reader:
    """Validates the parsed YAML; every error names the file, the article and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> ImportFileError:
        # Capped whatever the caller quoted: the error must never grow with the input.
        return ImportFileError(f"{self.path}: {where[:200]}: {problem[:300]}")

    def text(self, value: Any, where: str, *, max_len: int | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "must be a non-empty text")
        if max_len and len(value) > max_len:
            raise self.fail(where, f"longer than {max_len} characters")
        if _CONTROL.search(value):
            raise self.fail(where, "must not hold NUL or other control characters")
        return value

    def one_line(self, value: Any, where: str, *, max_len: int) -> str:
        text = self.text(value, where, max_len=max_len).strip()
        # Titles and subjects end up in headers and headings: no line breaks or controls.
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            raise self.fail(where, "must be one line without control characters")
        return text

    def lang_map(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "must be a map of languages (be, ru, en)")
        for lang in value:
            if lang not in LANGUAGES:
                raise self.fail(where, f"unknown language {echo(lang)} (use be, ru, en)")
        return value

    def read(self, data: Any) -> _EditionIn:
        if not isinstance(data, dict):
            raise self.fail("file", "must be a YAML map with week, languages and articles")
        unknown = set(data) - {"week", "languages", "subject", "topics", "articles"}
        if unknown:
            raise self.fail(f"field {_names(unknown)}", "unknown field")
        week_text = str(data.get("week", ""))[:ECHO_CHARS]
        try:
            week = parse_week(week_text)
        except ValidationError as exc:
            raise self.fail("field 'week'", str(exc)) from exc
        languages = data.get("languages")
        if not isinstance(languages, list) or not languages:
            raise self.fail("field 'languages'", "must list the languages, e.g. [be, ru, en]")
        for lang in languages:
            if lang not in LANGUAGES:
                raise self.fail("field 'languages'", f"unknown language {echo(lang)} (be, ru, en)")
        if len(set(languages)) != len(languages):
            raise self.fail("field 'languages'", "a language is listed twice")
        subjects = {
            lang: self.one_line(text, f"field 'subject.{lang}'", max_len=MAX_SUBJECT)
            for lang, text in self.lang_map(data.get("subject") or {}, "field 'subject'").items()
        }
        topics: dict[str, dict[str, str]] = {}
        raw_topics = data.get("topics") or {}
        if not isinstance(raw_topics, dict):
            raise self.fail("field 'topics'", "must be a map: slug -> names per language")
        for slug, names in raw_topics.items():
            where = f"topic {echo(slug)}"
            if not isinstance(slug, str) or not _SLUG_RE.match(slug):
                raise self.fail(where, "a slug is lowercase letters, digits and dashes")
            names = self.lang_map(names, f"{where}: field 'names'")
            topics[slug] = {
                lang: self.one_line(name, f"{where}: field {lang!r}", max_len=200)
                for lang, name in names.items()
            }
        raw_articles = data.get("articles")
        if not isinstance(raw_articles, list) or not raw_articles:
            raise self.fail("field 'articles'", "must be a non-empty list of articles")
        articles: list[_ArticleIn] = []
        seen: set[str] = set()
        for index, raw in enumerate(raw_articles, start=1):
            article = self.article(raw, index, languages)
            if article.slug in seen:
                raise self.fail(f"article {article.slug!r}", "field 'slug': used twice")
            seen.add(article.slug)
            articles.append(article)
        return _EditionIn(week, list(languages), subjects, topics, articles)

    def article(self, raw: Any, index: int, languages: list[str]) -> _ArticleIn:
        name = f"article #{index}"
        if not isinstance(raw, dict):
            raise self.fail(name, "must be a map with slug, topic, trend and translations")
        slug = raw.get("slug")
        if not isinstance(slug, str) or not _SLUG_RE.match(slug):
            raise self.fail(name, "field 'slug': lowercase letters, digits and dashes")
        name = f"article {slug!r}"
        unknown = set(raw) - {"slug", "topic", "trend", "position", "translations"}
        if unknown:
            raise self.fail(name, f"field {_names(unknown)}: unknown field")
        topic = raw.get("topic")
        if not isinstance(topic, str) or not _SLUG_RE.match(topic):
            raise self.fail(name, "field 'topic': must be a topic slug, e.g. economy")
        try:
            trend = Trend(str(raw.get("trend")))
        except ValueError as exc:
            choices = ", ".join(t.value for t in Trend)
            raise self.fail(
                name, f"field 'trend': must be one of {choices}, not {echo(raw.get('trend'))}"
            ) from exc
        position = raw.get("position", index)
        if (
            not isinstance(position, int)
            or isinstance(position, bool)
            or not 0 <= position <= MAX_POSITION
        ):
            raise self.fail(name, f"field 'position': a whole number from 0 to {MAX_POSITION}")
        texts = raw.get("translations")
        if not isinstance(texts, dict) or not texts:
            raise self.fail(name, "field 'translations': must map languages to title and body")
        translations: dict[str, _TextIn] = {}
        for lang, text in texts.items():
            where = f"translations.{str(lang)[:ECHO_CHARS]}"
            if lang not in languages:
                raise self.fail(name, f"field '{where}': language not listed in 'languages'")
            if not isinstance(text, dict):
                raise self.fail(name, f"field '{where}': must have a title and a body")
            extra = set(text) - {"title", "body"}
            if extra:
                raise self.fail(
                    name,
                    f"field '{where}.{str(sorted(extra, key=str)[0])[:ECHO_CHARS]}': unknown field",
                )
            title = self.one_line(
                text.get("title"), f"{name}: field '{where}.title'", max_len=MAX_TITLE
            )
            body = self.text(text.get("body"), f"{name}: field '{where}.body'")
            translations[lang] = _TextIn(title, body.strip() + "\n")
        return _ArticleIn(slug, topic, trend, position, translations)


def read_edition_file(path: str | Path) -> _EditionIn:
    """Parse and validate an edition file without touching the database."""
    path = Path(path)
    reader = _Reader(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read the file: {exc.strerror}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(f"{path}: line {line}: not UTF-8 text") from exc
    return reader.read(parse_yaml(raw, str(path)))


def parse_yaml(raw: str, name: str) -> Any:
    """The YAML's data, or ImportFileError saying where it went wrong (never a traceback)."""
    try:
        return yaml.load(raw, Loader=_NoAliasLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark is not None else "file"
        problem = (exc.problem or exc.context or "cannot parse")[:200]
        raise ImportFileError(f"{name}: {where}: not valid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ImportFileError(f"{name}: not valid YAML: {str(exc)[:200]}") from exc
    except RecursionError:
        raise ImportFileError(f"{name}: not valid YAML: nested too deeply") from None
    except (ValueError, OverflowError) as exc:
        # A value YAML reads but Python refuses: a 5,000-digit number, 2020-13-45.
        raise ImportFileError(f"{name}: not valid YAML: {str(exc)[:200]}") from exc


def import_edition(session: Session, path: str | Path) -> ImportResult:
    """Import or update a week's edition from a YAML file; all-or-nothing, never commits."""
    parsed = read_edition_file(path)
    with session.begin_nested():
        return _apply(session, Path(path), parsed)


def import_edition_file(session: Session, path: str | Path) -> Edition:
    """The contract's entry point: import_edition() returning just the Edition."""
    return import_edition(session, path).edition


def _apply(session: Session, path: Path, parsed: _EditionIn) -> ImportResult:
    seed_topics(session)
    topics = {t.slug: t for t in session.scalars(select(Topic))}
    topics_added: list[str] = []
    for slug, names in parsed.topics.items():
        if slug in topics:
            topics[slug].names = {**topics[slug].names, **names}
        else:
            topics[slug] = Topic(slug=slug, names=names)
            session.add(topics[slug])
            topics_added.append(slug)
    for wanted in parsed.articles:
        if wanted.topic not in topics:
            raise ImportFileError(
                f"{path}: article {wanted.slug!r}: field 'topic': unknown topic "
                f"{wanted.topic!r} (add it under 'topics' with its names)"
            )
    week = str(parsed.week)
    edition = session.scalar(select(Edition).where(Edition.week == week))
    created = edition is None
    if edition is None:
        edition = Edition(week=week, status=EditionStatus.draft, languages=[], subjects={})
        session.add(edition)
    elif edition.status in _LOCKED:
        raise Conflict(
            f"{path}: edition {week} is {edition.status.value}; its articles cannot change now"
        )
    edition.languages = list(parsed.languages)
    edition.subjects = {**(edition.subjects or {}), **parsed.subjects}
    result = ImportResult(edition=edition, created=created, topics_added=topics_added)
    by_slug = {a.slug: a for a in edition.articles}
    for item in parsed.articles:
        article = by_slug.get(item.slug)
        if article is None:
            article = Article(slug=item.slug)
            edition.articles.append(article)
            result.added.append(item.slug)
        else:
            result.updated.append(item.slug)
        article.topic = topics[item.topic]
        article.trend = item.trend
        article.position = item.position
        for lang, text in item.translations.items():
            translation = article.translation(lang)
            if translation is None:
                article.translations.append(
                    ArticleTranslation(lang=lang, title=text.title, body=text.body)
                )
            else:
                translation.title, translation.body = text.title, text.body
    in_file = {a.slug for a in parsed.articles}
    result.kept = sorted(slug for slug in by_slug if slug not in in_file)
    session.flush()
    session.expire(edition, ["articles"])  # reload in position order on next access
    return result


# --------------------------------------------------------------------------- reading


def get_edition(session: Session, week: str) -> Edition:
    """The edition of a week ('2020-W05'); NotFound when none was imported."""
    key = str(parse_week(week))
    edition = session.scalar(select(Edition).where(Edition.week == key))
    if edition is None:
        raise NotFound(f"no edition for week {key}")
    return edition


def missing_translations(
    edition: Edition, languages: Iterable[str] | None = None
) -> dict[str, list[str]]:
    """Article slug -> languages it lacks, among `languages` (default: all of be, ru, en).

    Every subscriber language counts by default: an edition written only in be and ru still
    reaches English readers, who would otherwise get an empty section.
    """
    wanted = [lang for lang in LANGUAGES if languages is None or lang in set(languages)]
    out: dict[str, list[str]] = {}
    for article in edition.articles:
        have = {t.lang for t in article.translations}
        lacking = [lang for lang in wanted if lang not in have]
        if lacking:
            out[article.slug] = lacking
    return out


def check_sendable(
    edition: Edition,
    fallback_language: str | None,
    languages: Iterable[str] | None = None,
) -> None:
    """Refuse (EditionIncomplete) an edition with no articles, or with texts missing in
    `languages` (default all) unless a fallback language covering every article is chosen."""
    fallback_language = parse_fallback(fallback_language)  # refused even when not needed
    if not edition.articles:
        raise EditionIncomplete(f"edition {edition.week} has no articles")
    missing = missing_translations(edition, languages)
    if not missing:
        return
    listing = "; ".join(f"{slug}: {', '.join(langs)}" for slug, langs in missing.items())
    if fallback_language is None:
        raise EditionIncomplete(
            f"edition {edition.week} lacks translations ({listing}); "
            "translate them or choose a fallback language"
        )
    uncovered = [a.slug for a in edition.articles if a.translation(fallback_language) is None]
    if uncovered:
        raise EditionIncomplete(
            f"edition {edition.week}: the fallback language {fallback_language} lacks "
            f"{', '.join(uncovered)}"
        )

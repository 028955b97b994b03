"""Property-based fuzzing of the edition importer: whatever the YAML holds, the import
succeeds or raises one short ImportFileError-like domain error, and a refusal writes nothing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.editions import import_edition
from newsletter.errors import NewsletterError
from newsletter.models import Article, ArticleTranslation, Edition, Topic
from newsletter.paths import sample_data_dir

SAMPLE = yaml.safe_load((sample_data_dir() / "2020-W05.yaml").read_text(encoding="utf-8"))
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**18, max_value=10**30)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["be", "ru", "en", "2020-W05", "economy", "improved", "", "\x00", "&a", "*a"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=3)
    ),
    max_leaves=8,
)
# Where a hostile value goes: every field the importer reads, and a few it does not know.
PLACES = [
    ("week",),
    ("languages",),
    ("subject",),
    ("subject", "en"),
    ("topics",),
    ("articles",),
    ("articles", 0),
    ("articles", 0, "slug"),
    ("articles", 0, "topic"),
    ("articles", 0, "trend"),
    ("articles", 0, "position"),
    ("articles", 0, "translations"),
    ("articles", 0, "translations", "en"),
    ("articles", 0, "translations", "en", "title"),
    ("articles", 0, "translations", "en", "body"),
    ("unknown",),
]


def _put(data: dict[str, Any], place: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    target: Any = data
    for step in place[:-1]:
        target = target.setdefault(step, {}) if isinstance(target, dict) else target[step]
    target[place[-1]] = value
    return data


def _counts(session: Session) -> tuple[int, ...]:
    return tuple(
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Edition, Article, ArticleTranslation, Topic)
    )


def _check(session: Session, path: Path) -> None:
    """The property: success, or one short domain error and nothing written."""
    session.rollback()
    before = _counts(session)
    try:
        import_edition(session, path)
    except NewsletterError as exc:
        assert len(str(exc)) < 700, str(exc)[:200]
        assert _counts(session) == before
    else:
        session.flush()
    session.rollback()


@settings(FUZZ, max_examples=100)
@given(place=st.sampled_from(PLACES), value=values)
# The cases, always tried first.
@example(place=("articles", 0, "position"), value=99999999999999999999999)
@example(place=("articles", 0, "translations", "en", "body"), value="a\x00b")
@example(place=("articles", 0, "translations", "en", "title"), value="a\x00b")
@example(place=("week",), value=[["lol"] * 9] * 9)
def test_any_value_anywhere(
    session: Session, tmp_path: Path, place: tuple[Any, ...], value: Any
) -> None:
    """Scenario: one field of the sample holds any YAML value: never a crash or a half-import."""
    path = tmp_path / "edition.yaml"
    path.write_text(
        yaml.safe_dump(_put(SAMPLE, place, value), allow_unicode=True), encoding="utf-8"
    )
    _check(session, path)


@FUZZ
@given(text=st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_any_text(session: Session, tmp_path: Path, text: str) -> None:
    """Scenario: any text at all as the file: never a crash."""
    path = tmp_path / "edition.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _check(session, path)

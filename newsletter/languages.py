"""The digest's languages and the ordered language sets a subscriber may hold."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import permutations

from newsletter.errors import ValidationError

LANGUAGES: tuple[str, ...] = ("be", "ru", "en")
DEFAULT_LANGUAGE = "be"

# Every ordered, non-empty subset of LANGUAGES: the 15 variants an edition can have.
LANGUAGE_SETS: tuple[tuple[str, ...], ...] = tuple(
    combo for size in range(1, len(LANGUAGES) + 1) for combo in permutations(LANGUAGES, size)
)


def parse_languages(value: str | Iterable[str]) -> tuple[str, ...]:
    """Turn 'be,en' or ['be', 'en'] into an ordered language set, or raise ValidationError."""
    items = value.split(",") if isinstance(value, str) else list(value)
    langs = tuple(item.strip().lower() for item in items if item and item.strip())
    if not langs:
        raise ValidationError("choose at least one language (be, ru, en)")
    unknown = [lang for lang in langs if lang not in LANGUAGES]
    if unknown:
        raise ValidationError(f"unknown language {unknown[0]!r}: choose from be, ru, en")
    if len(set(langs)) != len(langs):
        raise ValidationError("a language is listed twice")
    return langs


def parse_fallback(value: str | None) -> str | None:
    """The language shown where a text is missing: one of be, ru, en, or None (none chosen).

    The one rule for every edge (CLI, staff pages, API) and for the domain's own checks."""
    if value is None or not value.strip():
        return None
    lang = value.strip().lower()
    if lang not in LANGUAGES:
        raise ValidationError(f"the fallback language must be one of be, ru, en, not {value!r}")
    return lang


def format_languages(langs: Iterable[str]) -> str:
    return ",".join(langs)

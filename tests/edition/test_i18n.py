"""Catalogs and localised dates."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from newsletter import i18n
from newsletter.date_words import DATA, DATE_LOCALES, apply_pattern, from_babel
from newsletter.languages import LANGUAGES
from newsletter.models import Trend
from newsletter.paths import PACKAGE_DIR, locale_dir, templates_dir

METHOD_MAP = [
    ("**.py", "python"),
    ("**.html", "jinja2"),
    ("**.txt", "jinja2"),
]


def _catalog(lang: str):  # type: ignore[no-untyped-def]
    with open(locale_dir() / lang / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle, locale=lang)


def _extracted(folder: Path) -> set[str]:
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(folder), METHOD_MAP, options_map={"**.html": {"extensions": "jinja2.ext.i18n"}}
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_catalog_translates_every_msgid(lang: str) -> None:
    """Each language's catalog translates every string of the code and templates, none fuzzy."""
    catalog = _catalog(lang)
    ids = {m.id for m in catalog if m.id}
    untranslated = sorted(m.id for m in catalog if m.id and (not m.string or m.fuzzy))
    assert untranslated == [], f"{lang}: untranslated or fuzzy: {untranslated}"
    wanted = _extracted(PACKAGE_DIR) | _extracted(templates_dir())
    missing = sorted(wanted - ids)
    assert missing == [], f"{lang}: strings used in code/templates missing from the catalog"
    others = {m.id for m in _catalog("en") if m.id}
    assert ids == others, f"{lang}: catalog holds other msgids than en"


def test_trend_labels_and_title_are_translated() -> None:
    """Trend labels and the digest title read in each language."""
    assert i18n.trend_label(Trend.improved, "be") == "Сітуацыя палепшылася"
    assert i18n.trend_label("worsened", "ru") == "Ситуация ухудшилась"
    assert i18n.trend_label(Trend.unchanged, "en") == "The situation has not changed"
    assert i18n.digest_title("be") == "Сітуацыя ў Беларусі"
    assert i18n.translations("ru").gettext("Unsubscribe") == "Отписаться"


def test_week_ranges_and_dates_are_localised() -> None:
    """The sample week reads naturally in each language, the year shown once."""
    assert i18n.format_week_range("2020-W05", "be") == "27 студзеня – 2 лютага 2020"
    assert i18n.format_week_range("2020-W05", "ru") == "27 января — 2 февраля 2020 г."
    assert i18n.format_week_range("2020-W05", "en") == "27 January – 2 February 2020"
    assert i18n.format_week_range("2020-W01", "en") == "30 December 2019 – 5 January 2020"
    assert i18n.format_week_range("2020-W01", "be") == "30 снежня 2019 – 5 студзеня 2020"
    from datetime import date

    assert i18n.format_date(date(2020, 2, 1), "be") == "1 лютага 2020"


def test_a_week_within_one_month_names_the_month_once() -> None:
    """2020-W06 reads "3–9 February 2020", the month in its genitive form in be and ru."""
    assert i18n.format_week_range("2020-W06", "en") == "3–9 February 2020"
    # The sample edition writes "1 лютага 2020 года", "1 февраля 2020 года": genitive.
    assert i18n.format_week_range("2020-W06", "be") == "3–9 лютага 2020"
    assert i18n.format_week_range("2020-W06", "ru") == "3—9 февраля 2020 г."
    # Nominative forms ("люты", "февраль") would be wrong after a day number.
    assert "люты " not in i18n.format_week_range("2020-W06", "be")
    assert "февраль" not in i18n.format_week_range("2020-W06", "ru")


def test_intervals_are_babels_with_the_month_written_out() -> None:
    """With abbreviated months the interval is exactly Babel's format_interval (yMMMd)."""
    from datetime import date, timedelta

    from babel.dates import format_interval

    starts = [date(2019, 12, 30), date(2020, 1, 27), date(2020, 2, 3), date(2021, 2, 28)]
    for lang in ("be", "ru", "en"):
        for start in starts:
            for days in (0, 6, 40, 400):
                end = start + timedelta(days=days)
                babel = format_interval(start, end, "yMMMd", locale=DATE_LOCALES[lang])
                ours = i18n.format_interval(start, end, lang, month="MMM")
                assert ours == babel.replace("\u2009", " ").replace("\u202f", " ")
                assert "\u2009" not in i18n.format_interval(start, end, lang)


def test_the_date_words_are_babels() -> None:
    """The CLDR words and patterns kept in date_words are the installed Babel's: after
    a Babel upgrade that changes them, `python -m newsletter.date_words` prints the new ones."""
    assert from_babel() == DATA


def test_every_day_and_range_is_written_as_babel_writes_it() -> None:
    """Every day of three years, alone and as the start of a week, a month and a year range,
    in each language: the same text as Babel's format_date and format_interval."""
    from datetime import date, timedelta

    from babel.dates import format_date, format_interval

    for lang in ("be", "ru", "en"):
        locale = DATE_LOCALES[lang]
        day = date(2019, 1, 1)
        while day.year < 2022:
            assert i18n.format_date(day, lang) == format_date(day, "d MMMM y", locale=locale)
            for days in (0, 6, 31, 366):
                end = day + timedelta(days=days)
                babel = format_interval(day, end, "yMMMd", locale=locale)
                ours = i18n.format_interval(day, end, lang, month="MMM")
                assert ours == babel.replace("\u2009", " ").replace("\u202f", " ")
            day += timedelta(days=1)


def test_a_pattern_with_an_unknown_field_is_refused() -> None:
    from datetime import date

    with pytest.raises(ValueError, match="unsupported date field"):
        apply_pattern("EEEE d MMMM", date(2020, 1, 1), "en")
    with pytest.raises(ValueError):
        i18n.format_interval(date(2020, 1, 1), date(2020, 1, 2), "en", month="LLLL")
    assert (
        apply_pattern("dd.MM.yyyy 'o''clock' ''", date(2020, 2, 3), "en") == "03.02.2020 o'clock '"
    )

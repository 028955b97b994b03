"""Languages: gettext catalogs for be/ru/en (Babel), localised dates and week ranges.

The catalogs are newsletter/locale/<lang>/LC_MESSAGES/messages.po; msgids are the English
wording. They are compiled in memory on first use (babel.messages), so a fresh checkout, an
editable install and a wheel behave the same and a stale .mo can never shadow an edited .po.
The workflow (extract, update, check) is in the README's "Editions" section.
"""

from __future__ import annotations

import gettext
import re
from datetime import date, datetime
from functools import cache
from io import BytesIO

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from newsletter.date_words import DATA as DATE_DATA
from newsletter.date_words import apply_pattern
from newsletter.editions import IsoWeek, parse_week
from newsletter.errors import ValidationError
from newsletter.languages import LANGUAGES
from newsletter.models import Trend
from newsletter.paths import locale_dir

DOMAIN = "messages"

# Each language's own name (endonym): a reader looks for their language written in it.
LANGUAGE_NAMES: dict[str, str] = {"be": "Беларуская", "ru": "Русский", "en": "English"}


def N_(message: str) -> str:
    """Mark a string for extraction without translating it here."""
    return message


DIGEST_TITLE = N_("Situation in Belarus")
TREND_LABELS: dict[Trend, str] = {
    Trend.improved: N_("The situation has gotten better"),
    Trend.worsened: N_("The situation has gotten worse"),
    Trend.unchanged: N_("The situation has not changed"),
}

# Page strings of the glossary that the web pages use: marked here so that `pybabel
# extract` keeps them in the catalogs before (and after) a template uses them.
PAGE_STRINGS: tuple[str, ...] = (
    N_("Subscribe to our newsletter"),
    N_(
        "Once a week, in coordination with a group of prominent Belarusian analysts, we "
        "provide analytical commentaries on the most topical and relevant issues, "
        "including the behind-the-scenes processes occurring in Belarus. These "
        "commentaries are available in Belarusian, Russian, and English."
    ),
    N_("You have been successfully subscribed"),
    N_(
        "Almost done. We have sent you an email; follow the link in it to confirm your "
        "subscription."
    ),
    N_("Please confirm your subscription"),
    N_("Confirm subscription"),
    N_("Unsubscribe"),
    N_("You have been unsubscribed. You will not receive further emails from us."),
    N_("Manage your subscription"),
    N_("Languages you want to receive"),
    N_("View in browser"),
    N_("View all"),
    N_("Read more"),
    N_("You are receiving this email because you subscribed to our weekly newsletter."),
)


def _check(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValidationError(f"unknown language {lang!r}: choose from be, ru, en")
    return lang


@cache
def translations(lang: str) -> gettext.GNUTranslations:
    """The compiled catalog of one language (gettext, ngettext, pgettext...)."""
    path = locale_dir() / _check(lang) / "LC_MESSAGES" / f"{DOMAIN}.po"
    with open(path, "rb") as handle:
        catalog = read_po(handle, locale=lang, domain=DOMAIN)
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def gettext_for(lang: str, message: str) -> str:
    return translations(lang).gettext(message)


def digest_title(lang: str) -> str:
    return gettext_for(lang, DIGEST_TITLE)


def trend_label(trend: Trend | str, lang: str) -> str:
    """'The situation has gotten better' in the reader's language."""
    return gettext_for(lang, TREND_LABELS[Trend(trend)])


# CLDR puts thin spaces around range dashes and before "г."; some mail clients' fonts show
# them as boxes or drop them, and a one-line subject folds them anyway: plain spaces.
_SPACES = str.maketrans({"\u2009": " ", "\u202f": " "})


def format_date(day: date | datetime, lang: str) -> str:
    """'27 студзеня 2020', '27 января 2020', '27 January 2020'."""
    return apply_pattern("d MMMM y", day, _check(lang))


def format_interval(start: date, end: date, lang: str, *, month: str = "MMMM") -> str:
    """'3–9 лютага 2020', '27 января — 2 февраля 2020 г.', '30 December 2019 – 5 January 2020'.

    CLDR's interval patterns for the skeleton yMMMd (the ends collapse as the language
    writes them), with the month widened to MMMM as CLDR's matching rule allows: Babel's
    format_interval does not widen, and would print "3–9 лют 2020" (with month="MMM" this
    is exactly format_interval). MMMM is the format (genitive) form in be and ru, as in the
    sample edition's "1 лютага 2020 года". The patterns are date_words.DATA, Babel's own."""
    if month not in ("MMM", "MMMM"):
        raise ValueError(f"month must be MMM or MMMM, not {month!r}")
    data = DATE_DATA[_check(lang)]
    if start == end:
        return apply_pattern(data[f"y{month}d"], start, lang).translate(_SPACES)
    # The largest calendar field in which the two ends differ picks the pattern.
    field = "y" if start.year != end.year else "M" if start.month != end.month else "d"
    patterns = [re.sub(r"(?<!M)MMM(?!M)", month, p) for p in data["interval"][field]]
    text = "".join(
        apply_pattern(p, day, lang) for p, day in zip(patterns, (start, end), strict=True)
    )
    return text.translate(_SPACES)


def format_week_range(week: IsoWeek | str, lang: str) -> str:
    """'3–9 лютага 2020' within a month, '27 студзеня – 2 лютага 2020' across two."""
    iso = week if isinstance(week, IsoWeek) else parse_week(str(week))
    return format_interval(iso.monday, iso.sunday, lang)

"""The few CLDR date words and patterns the digest prints, taken from Babel once and kept here.

Babel's locale data for be, ru and en_001 takes 7.7 MB of every process that formats a date
(each worker, each web worker) and a pickle load at start; the week ranges need 24 month
names and 4 patterns per language. `python -m newsletter.date_words` prints DATA from the
installed Babel, and a test fails when the two differ (after a Babel upgrade: paste it in).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

# CLDR's locale for each language of the digest: English in the international style ("3–9
# February 2020"), en_001, not the US one ("Feb 3 – 9, 2020").
DATE_LOCALES: dict[str, str] = {"be": "be", "ru": "ru", "en": "en_001"}

# Per language: the format (genitive) month names, wide and abbreviated; the yMMMd interval
# patterns by the largest field in which the two ends differ; the yMMMMd and yMMMd
# skeletons' patterns.
DATA: dict[str, dict[str, Any]] = {
    "be": {
        "MMMM": [
            "студзеня", "лютага", "сакавіка", "красавіка", "мая", "чэрвеня",
            "ліпеня", "жніўня", "верасня", "кастрычніка", "лістапада", "снежня",
        ],
        "MMM": [
            "сту", "лют", "сак", "кра", "мая", "чэр",
            "ліп", "жні", "вер", "кас", "ліс", "сне",
        ],
        "interval": {
            "d": ["d–", "d MMM y"],
            "M": ["d MMM – ", "d MMM y"],
            "y": ["d MMM y – ", "d MMM y"],
        },
        "yMMMMd": "d MMMM y\u202f'г'.",
        "yMMMd": "d MMM y",
    },
    "ru": {
        "MMMM": [
            "января", "февраля", "марта", "апреля", "мая", "июня",
            "июля", "августа", "сентября", "октября", "ноября", "декабря",
        ],
        "MMM": [
            "янв.", "февр.", "мар.", "апр.", "мая", "июн.",
            "июл.", "авг.", "сент.", "окт.", "нояб.", "дек.",
        ],
        "interval": {
            "d": ["d—", "d MMM y\u202fг."],
            "M": ["d MMM — ", "d MMM y\u202fг."],
            "y": ["d MMM y\u202fг. — ", "d MMM y\u202fг."],
        },
        "yMMMMd": "d MMMM y\u202f'г'.",
        "yMMMd": "d MMM y\u202f'г'.",
    },
    "en": {
        "MMMM": [
            "January", "February", "March", "April", "May", "June",
            "July", "August", "September", "October", "November", "December",
        ],
        "MMM": [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun",
            "Jul", "Aug", "Sept", "Oct", "Nov", "Dec",
        ],
        "interval": {
            "d": ["d–", "d MMM y"],
            "M": ["d MMM\u2009–\u2009", "d MMM y"],
            "y": ["d MMM y\u2009–\u2009", "d MMM y"],
        },
        "yMMMMd": "d MMMM y",
        "yMMMd": "d MMM y",
    },
}  # fmt: skip

# A CLDR pattern: 'quoted text' ('' is a quote), a run of one field letter, or other text.
_TOKEN = re.compile(r"'((?:[^']|'')*)'|([A-Za-z])\2*|[^'A-Za-z]+")


def apply_pattern(pattern: str, day: date, lang: str) -> str:
    """`day` written with a CLDR date pattern of the fields d, M and y (what DATA holds)."""
    words = DATA[lang]
    out: list[str] = []
    for match in _TOKEN.finditer(pattern):
        quoted, field, text = match.group(1), match.group(2), match.group(0)
        if quoted is not None:
            out.append(quoted.replace("''", "'") if quoted else "'")
        elif field is None:
            out.append(text)
        elif field == "d" and len(text) <= 2:
            out.append(f"{day.day:0{len(text)}d}")
        elif field == "y" and len(text) != 2:
            out.append(f"{day.year:0{len(text)}d}")
        elif field == "M" and len(text) in (3, 4):
            out.append(words[text][day.month - 1])
        elif field == "M" and len(text) <= 2:
            out.append(f"{day.month:0{len(text)}d}")
        else:
            raise ValueError(f"unsupported date field {text!r} in {pattern!r}")
    return "".join(out)


def from_babel() -> dict[str, dict[str, Any]]:
    """DATA as the installed Babel has it."""
    from babel import Locale

    data: dict[str, dict[str, Any]] = {}
    for lang, code in DATE_LOCALES.items():
        loc = Locale.parse(code)
        months = loc.months["format"]
        data[lang] = {
            "MMMM": [months["wide"][m] for m in range(1, 13)],
            "MMM": [months["abbreviated"][m] for m in range(1, 13)],
            "interval": {f: list(loc.interval_formats["yMMMd"][f]) for f in "dMy"},
            "yMMMMd": loc.datetime_skeletons["yMMMMd"].pattern,
            "yMMMd": loc.datetime_skeletons["yMMMd"].pattern,
        }
    return data


if __name__ == "__main__":
    import pprint

    pprint.pprint(from_babel(), width=100, sort_dicts=False)

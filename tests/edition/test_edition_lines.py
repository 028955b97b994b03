"""Finding the line an import error concerns: the importer's own messages, walked in the YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.edition_lines import error_line
from newsletter.editions import read_edition_file
from newsletter.errors import ImportFileError

FILE = """\
week: 2020-W06
languages: [be]
topics:
  spaceflight:
    be: Космас
    xx: Space
articles:
  - slug: one
    topic: economy
    trend: improved
    translations:
      be: {title: Адзін, body: Тэкст}
  - just a string
"""


def message_for(tmp_path: Path, text: str) -> str:
    path = tmp_path / "w.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ImportFileError) as caught:
        read_edition_file(path)
    return str(caught.value).removeprefix(f"{path}: ")


def test_a_topic_error_points_at_the_name_it_refuses(tmp_path: Path) -> None:
    """An unknown language in a topic's names: the topic's key line (the map is refused)."""
    detail = message_for(tmp_path, FILE)
    assert detail.startswith("topic 'spaceflight'")
    assert error_line(FILE, detail) == 4


def test_an_article_by_number_points_at_its_item(tmp_path: Path) -> None:
    """The second article is not a map: the line of that list item."""
    text = FILE.replace("    xx: Space\n", "")
    detail = message_for(tmp_path, text)
    assert detail.startswith("article #2")
    assert error_line(text, detail) == 12


def test_unknown_places_and_broken_text_give_no_line() -> None:
    """A message naming no place, YAML that does not parse, or an empty file: no line."""
    assert error_line(FILE, "file: must be a YAML map") is None
    assert error_line("a: [", "field 'a': bad") is None
    assert error_line("", "field 'week': bad") is None
    assert error_line(FILE, "line 3: not valid YAML: x") == 3
    assert error_line(FILE, "article 'missing': field 'trend': bad") == 7  # the list itself

"""Bounded edition imports: no alias bombs, no huge files or echoes, no 500 on odd values."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.editions import MAX_FILE_BYTES, import_edition
from newsletter.errors import ImportFileError
from newsletter.models import Article, Edition

# A billion laughs in 414 bytes (the was 517): each level nine times the one before.
BOMB = "\n".join(
    ["a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    + ["week: *i"]
)


def nothing_written(session: Session) -> bool:
    session.rollback()
    return not session.scalar(select(func.count()).select_from(Edition)) and not session.scalar(
        select(func.count()).select_from(Article)
    )


def refused(session: Session, path: Path) -> str:
    """The import's one clear error, after checking it wrote nothing and stayed short."""
    with pytest.raises(ImportFileError) as info:
        import_edition(session, path)
    message = str(info.value)
    assert len(message) < 700, message[:200]
    assert nothing_written(session)
    return message


def test_alias_bomb_is_refused_at_once(
    session: Session, write_edition: Callable[..., Path]
) -> None:
    """A few-hundred-byte billion laughs: refused at once, with a short message."""
    path = write_edition(BOMB)
    assert path.stat().st_size < 600
    started = time.perf_counter()
    message = refused(session, path)
    assert time.perf_counter() - started < 1
    assert "anchors and aliases" in message and "line 1" in message


def test_any_anchor_is_refused(
    session: Session, write_edition: Callable[..., Path], sample_data: dict[str, Any]
) -> None:
    """Even one harmless-looking anchor and alias: editions never need them."""
    text = yaml.safe_dump(sample_data, allow_unicode=True).replace("week:", "week: &w", 1)
    assert "anchors and aliases" in refused(session, write_edition(text))


def test_file_size_is_capped(session: Session, write_edition: Callable[..., Path]) -> None:
    """A file over the cap is refused before it is parsed."""
    path = write_edition("week: 2020-W05\n" + "#" * MAX_FILE_BYTES)
    assert "larger than 2 MB" in refused(session, path)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["articles"][0].update(position=99999999999999999999999), "'position'"),
        (lambda d: d["articles"][0].update(position=-1), "'position'"),
        (lambda d: d["articles"][0]["translations"]["en"].update(title="A\x00B"), "control"),
        (lambda d: d["articles"][0]["translations"]["en"].update(body="x\x00y"), "control"),
        (lambda d: d["articles"][0].update(trend="x" * 100_000), "not 'xxx"),
        (lambda d: d.update({"y" * 100_000: 1}), "unknown field"),
        (lambda d: d.update({1: 1, "z": 2}), "unknown field"),
        (lambda d: d.update(week="W" * 100_000), "a week looks like"),
        (lambda d: d.update(languages=["be", "q" * 100_000]), "unknown language"),
    ],
)
def test_odd_values_are_clear_errors(
    session: Session,
    write_edition: Callable[..., Path],
    sample_data: dict[str, Any],
    change: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    """A huge position, a NUL byte (PostgreSQL cannot store it), huge or odd keys: one line."""
    data = copy.deepcopy(sample_data)
    change(data)
    assert expected in refused(session, write_edition(data))


@pytest.mark.parametrize(
    "text",
    ["week: " + "9" * 5000, "week: 2020-13-45", "[" * 5000 + "]" * 5000, "a: b\n\tc: d", "\x00"],
)
def test_unparsable_yaml_is_a_clear_error(
    session: Session, write_edition: Callable[..., Path], text: str
) -> None:
    """A 5,000-digit number, an impossible date, deep nesting, tabs, NUL: one clear error."""
    assert "not valid YAML" in refused(session, write_edition(text))


def test_cli_refuses_the_bomb_in_one_line(cli, write_edition: Callable[..., Path]) -> None:  # type: ignore[no-untyped-def]
    """`newsletter import` of the bomb: one line, non-zero exit, no traceback."""
    result = cli("import", str(write_edition(BOMB)))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "anchors and aliases" in result.stderr

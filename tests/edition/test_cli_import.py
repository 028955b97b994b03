"""`newsletter import` through the real command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def test_import_prints_what_it_did(cli, sample_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Importing the sample prints the week and its articles; a second run updates."""
    first = cli("import", str(sample_path))
    assert first.returncode == 0, first.stderr
    assert "imported edition 2020-W05" in first.stdout and "added: us-visit" in first.stdout
    second = cli("import", str(sample_path))
    assert second.returncode == 0, second.stderr
    assert "updated edition 2020-W05" in second.stdout


def test_bad_file_is_one_line(  # type: ignore[no-untyped-def]
    cli, sample_data: dict[str, Any], write_edition: Callable[..., Path]
) -> None:
    """A bad file exits 1 with one line naming the file, the article and the field."""
    sample_data["articles"][0]["trend"] = "better"
    path = write_edition(sample_data)
    result = cli("import", str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and "'us-visit'" in lines[0] and "'trend'" in lines[0]

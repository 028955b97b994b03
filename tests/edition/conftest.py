"""Fixtures for the edition tests: the sample week, and edition files written on the fly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from newsletter.paths import sample_data_dir

SAMPLE = sample_data_dir() / "2020-W05.yaml"


@pytest.fixture
def sample_path() -> Path:
    return SAMPLE


@pytest.fixture
def sample_data() -> dict[str, Any]:
    return yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))


@pytest.fixture
def write_edition(tmp_path: Path) -> Callable[..., Path]:
    """Write a dict (or raw text) as an edition YAML file and return its path."""

    def write(data: dict[str, Any] | str, name: str = "edition.yaml") -> Path:
        path = tmp_path / name
        text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write

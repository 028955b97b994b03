"""Fixtures for the edition tests: the sample week, and edition files written on the fly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from newsletter.paths import sample_data_dir

SAMPLE = sample_data_dir() / "2020-W05.yaml"


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="module")
def rendering_db(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A private migrated SQLite database for rendering tests (rendering is SQL-agnostic)."""
    from newsletter import migrate
    from newsletter.db import make_engine, make_session_factory

    path = tmp_path_factory.mktemp("render") / "render.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        yield session
    engine.dispose()


@pytest.fixture(scope="module")
def render_settings():  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from newsletter.config import Settings

    return replace(
        Settings(),
        secret_key="test-secret",
        base_url="https://news.example.org",
        from_address="Situation in Belarus <digest@news.example.org>",
        postal_address="Example Media, PO Box 1, 00-001 Warsaw, Poland",
    )

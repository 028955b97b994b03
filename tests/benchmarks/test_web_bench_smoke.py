"""Smoke test of `python -m benchmarks.web` at a tiny load: every page measured, no error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = (
    "static css",
    "archive page",
    "archive index",
    "form",
    "subscribe",
    "confirm",
    "one-click unsubscribe",
)


def _admin_dsn() -> str:
    """The PostgreSQL the test fixtures use (NEWSLETTER_TEST_PG_URL), as a libpq DSN."""
    url = os.environ.get("NEWSLETTER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    return url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"


@pytest.mark.slow
def test_web_benchmark_at_a_tiny_load() -> None:
    """Scenario: someone reruns the web benchmark (here one second per page, two connections):
    it builds its database and server, drives wrk through every page and POST, and prints a
    row per page with a rate, no error, and the targets' verdict."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.web", "--workers", "1", "--duration", "1",
         "--connections", "2", "--post-connections", "1", "--threads", "1", "--tokens", "300",
         "--pause", "0", "-q", "--admin-dsn", _admin_dsn()],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {
        cells[0]: cells[1:]
        for line in proc.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| page")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert set(rows) == set(PAGES)
    for page, (figures,) in rows.items():
        rate = float(re.match(r"([\d,]+), ", figures)[1].replace(",", ""))  # type: ignore[index]
        assert rate > 0, page
        assert "errors" not in figures, page
    assert "of the static ceiling" in proc.stdout
    assert "FAILED" not in proc.stderr

"""Property-based fuzzing of the subscriber CSV import: any cells, any bytes: rows are
imported or rejected by line, or the file is refused whole; never a crash (SQLite and
PostgreSQL)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.errors import ImportFileError
from newsletter.models import Subscriber
from newsletter.subscriber_csv import read_chunks, scan_subscriber_csv
from newsletter.subscriptions import import_subscribers

SECRET = "test-secret-key-not-for-production"
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

cells = st.text(max_size=40) | st.sampled_from(
    ["a@example.org", "B@Example.org", "be", "be,en", "pending", "active", "=1+1", "\x00", ""]
)
headers = st.permutations(["email", "languages", "name", "status"])


def _import(session: Session, path: Path) -> tuple[int, int]:
    """What the CLI does, without committing: (added, rejected)."""
    scan_subscriber_csv(path)
    added = rejected = 0
    for chunk in read_chunks(path, 3):
        rows = [row for _, row in chunk if not isinstance(row, str)]
        reasons = [row for _, row in chunk if isinstance(row, str)]
        assert all(len(reason) <= 200 for reason in reasons)
        rejected += len(reasons)
        added += len(import_subscribers(session, SECRET, rows).added)
        session.flush()
    return added, rejected


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Subscriber)) or 0


@FUZZ
@given(header=headers, rows=st.lists(st.lists(cells, min_size=0, max_size=5), max_size=8))
@example(
    header=["email", "languages", "name", "status"], rows=[["a@example.org", "be", "A\x00B", ""]]
)
@example(
    header=["email", "languages", "name", "status"], rows=[["a\x00@example.org", "be", "", ""]]
)
def test_any_cells(
    session: Session, tmp_path: Path, header: list[str], rows: list[list[str]]
) -> None:
    """Scenario: a well-formed CSV with any cells: each row imported or rejected by line."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / "list.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    session.rollback()
    try:
        added, rejected = _import(session, path)
    except ImportFileError as exc:
        assert len(str(exc)) < 700
        assert _count(session) == 0
    else:
        assert added + rejected <= len(rows)
        assert _count(session) == added
    session.rollback()


@FUZZ
@given(data=st.binary(max_size=400))
def test_any_bytes(session: Session, tmp_path: Path, data: bytes) -> None:
    """Scenario: any bytes after a valid header: imported, rejected by line, or refused whole."""
    path = tmp_path / "list.csv"
    path.write_bytes(b"email,languages,name\n" + data)
    session.rollback()
    try:
        _import(session, path)
    except ImportFileError as exc:
        assert len(str(exc)) < 700
        assert _count(session) == 0
    session.rollback()

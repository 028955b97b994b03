"""`subscribers import` streams: chunks committed one by one, progress, rejected rows by
line, and a file that is broken anywhere writes nothing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.models import Subscriber
from newsletter.subscriber_csv import read_chunks

ROWS = (
    "email,languages,name\n"
    "a@example.org,be,A\n"  # line 2
    "not-an-address,be,\n"  # line 3
    "b@example.org,ru,\n"
    "c@example.org,en,\n"
    'd@example.org,"be,en",\n'
    "e@example.org,de,\n"  # line 7
    "f@example.org,be,\n"
    "a@example.org,be,\n"  # line 9: a repeat
)


def count(session: Session) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(Subscriber)) or 0


def test_import_streams_in_chunks_with_progress(cli, session: Session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Eight rows, two at a time: progress after each chunk, each bad row named by its line."""
    source = tmp_path / "list.csv"
    source.write_text(ROWS, encoding="utf-8")
    result = cli("subscribers", "import", str(source), "--chunk", "2")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("...")]
    assert progress == [f"... {n} of 8 rows" for n in (2, 4, 6, 8)]
    problems = [line for line in result.stderr.splitlines() if line.startswith("line")]
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 7", "line 9"]
    assert "repeats line 2" in problems[2]
    assert result.stdout.strip() == "imported 5, skipped 0 already present, rejected 3"
    assert count(session) == 5
    again = cli("subscribers", "import", str(source), "--chunk", "3")  # an interrupted run, redone
    assert "imported 0, skipped 5 already present, rejected 3" in again.stdout
    assert count(session) == 5


def test_a_file_broken_anywhere_writes_nothing(cli, session: Session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Bad bytes or bad quoting on the last line: refused whole, before any chunk is written."""
    for tail, message in (
        ("z@example.org,be,Алесь\n".encode("cp1251"), "line 10 is not UTF-8 text"),
        (b'"z@example.org,be,\n', "not valid CSV"),
        (b"z@example.org,be," + b"x" * (1024 * 1024 + 10) + b"\n", "line 10 is longer than 1 MB"),
    ):
        source = tmp_path / "broken.csv"
        source.write_bytes(ROWS.encode() + tail)
        result = cli("subscribers", "import", str(source), "--chunk", "2")
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert message in result.stderr
        assert count(session) == 0


def test_rejections_quote_little_of_a_huge_row(tmp_path: Path) -> None:
    """A 100 KB address is rejected with a short reason, not echoed whole."""
    source = tmp_path / "huge.csv"
    source.write_text("email,languages\n" + "x" * 100_000 + "@example.org,be\n", encoding="utf-8")
    [[(line, reason)]] = list(read_chunks(source))
    assert line == 2 and isinstance(reason, str) and len(reason) <= 200


def test_chunks_are_bounded(tmp_path: Path) -> None:
    """Rows come in chunks of the asked size, whatever the file's length."""
    source = tmp_path / "many.csv"
    source.write_text(
        "email,languages\n" + "".join(f"r{i}@example.org,be\n" for i in range(25)),
        encoding="utf-8",
    )
    assert [len(chunk) for chunk in read_chunks(source, 10)] == [10, 10, 5]

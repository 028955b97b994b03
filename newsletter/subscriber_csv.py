"""The subscriber CSV format: reading an import file row by row, writing an export.

A header row names the columns, in any order: `email` and `languages` (like `be,en`) are
required, `name` and `status` (blank means active) optional; `subscribed` and `confirmed`
(ISO 8601, as an export writes them) are accepted so an export can be imported again.
UTF-8, with or without a byte-order mark.

Imports stream: `scan_subscriber_csv` checks the whole file (encoding, quoting, header)
before anything is written, then `read_chunks` hands out validated rows CHUNK_ROWS at a time,
so memory stays bounded whatever the file's size; a rejected row is reported by its line.

An export is safe to open in a spreadsheet (OWASP's rule against CSV injection): a cell that
begins with = + - @, a tab or a carriage return gets a leading apostrophe (so does one
that begins with an apostrophe), which spreadsheets
show as text and never evaluate; an import takes that apostrophe off again.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.errors import ImportFileError, ValidationError
from newsletter.models import Subscriber
from newsletter.subscriptions import NewSubscriber, new_subscriber

REQUIRED = ("email", "languages")
OPTIONAL = ("name", "status", "subscribed", "confirmed")
EXPORT_COLUMNS = ("email", "name", "languages", "status", "subscribed", "confirmed")
# What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A cell a spreadsheet shows as text: an apostrophe before a formula's first character
    (and before a leading apostrophe, so that `restore` gives back exactly what was here)."""
    return "'" + cell if cell.startswith((*FORMULA_START, "'")) else cell


def restore(cell: str) -> str:
    """The value `neutralise` was given (an import reads back what an export wrote)."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith((*FORMULA_START, "'")) else cell


# Rows per chunk of a streamed import: each chunk is validated, written and committed alone.
CHUNK_ROWS = 1000
# A physical line longer than this is refused: nothing reads an unbounded line into memory.
MAX_LINE_BYTES = 1024 * 1024
# A rejection quotes at most this much of the row.
MAX_REASON = 200

Row = tuple[int, "NewSubscriber | str"]  # (line, the valid row or why it was rejected)


@dataclass
class ParsedFile:
    rows: list[tuple[int, NewSubscriber]] = field(default_factory=list)  # (line, row)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    @classmethod
    def of(cls, rows: Iterable[Row]) -> ParsedFile:
        parsed = cls()
        for line, row in rows:
            if isinstance(row, str):
                parsed.rejected.append((line, row))
            else:
                parsed.rows.append((line, row))
        return parsed


def read_subscriber_csv(path: str | Path) -> ParsedFile:
    """Validate every row of a file at once (small files, tests); see read_chunks to stream."""
    return ParsedFile.of(row for chunk in read_chunks(path, CHUNK_ROWS) for row in chunk)


def parse_subscriber_csv(text: str, name: str = "file") -> ParsedFile:
    return ParsedFile.of(_rows(iter(text.splitlines(keepends=True)), name))


def scan_subscriber_csv(path: str | Path) -> int:
    """Check a whole file before anything is imported: UTF-8, CSV quoting, the header, line
    lengths; ImportFileError if any fails. Streams; returns the number of data rows."""
    path = Path(path)
    with _open(path) as handle:
        reader = csv.reader(_lines(handle, str(path)), strict=True)
        try:
            _columns(_header(reader, str(path)), str(path))
            return sum(1 for cells in reader if any(cell.strip() for cell in cells))
        except csv.Error as exc:
            raise _not_csv(str(path), reader.line_num, exc) from None


def read_chunks(path: str | Path, size: int = CHUNK_ROWS) -> Iterator[list[Row]]:
    """The file's rows, validated, `size` at a time; memory stays bounded by the chunk."""
    path = Path(path)
    with _open(path) as handle:
        chunk: list[Row] = []
        for row in _rows(_lines(handle, str(path)), str(path)):
            chunk.append(row)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read it ({exc.strerror})") from None


def _lines(handle: BinaryIO, name: str) -> Iterator[str]:
    """Decoded physical lines (line endings kept, as csv wants them), each of bounded length."""
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise ImportFileError(f"{name}: line {number} is longer than 1 MB")
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ImportFileError(f"{name}: line {number} is not UTF-8 text") from None


def _not_csv(name: str, line: int, exc: csv.Error) -> ImportFileError:
    return ImportFileError(f"{name}: line {line}: not valid CSV ({str(exc)[:MAX_REASON]})")


def _header(reader: Any, name: str) -> list[str]:
    header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    if header is None:
        raise ImportFileError(f"{name}: empty file (expected a header row: email,languages,...)")
    return list(header)


def _rows(lines: Iterator[str], name: str) -> Iterator[Row]:
    reader = csv.reader(lines, strict=True)
    try:
        columns = _columns(_header(reader, name), name)
        first_line: dict[str, int] = {}  # address -> line: a repeat is reported, not imported
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(columns):
                yield line, f"{len(cells)} fields but the header has {len(columns)}"
                continue
            values = dict(zip(columns, [c.strip() for c in cells], strict=False))
            try:
                row = _row(values)
            except ValidationError as exc:
                yield line, str(exc)[:MAX_REASON]
                continue
            if row.email in first_line:
                yield line, f"{row.email} repeats line {first_line[row.email]}"
                continue
            first_line[row.email] = line
            yield line, row
    except csv.Error as exc:
        raise _not_csv(name, reader.line_num, exc) from None


def _columns(header: list[str], name: str) -> list[str]:
    columns = [cell.strip().lower() for cell in header]
    unknown = [c for c in columns if c not in REQUIRED + OPTIONAL]
    if unknown:
        expected = ", ".join(REQUIRED + OPTIONAL)
        shown = repr(unknown[0])[:60]
        raise ImportFileError(f"{name}: unknown column {shown} (columns: {expected})")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ImportFileError(f"{name}: the header has no {missing[0]!r} column")
    repeated = [c for c in columns if columns.count(c) > 1]
    if repeated:
        raise ImportFileError(f"{name}: the column {repeated[0]!r} appears twice")
    return columns


def _row(values: dict[str, str]) -> NewSubscriber:
    email = restore(values.get("email", ""))
    try:
        return new_subscriber(
            email,
            values.get("languages", ""),
            name=restore(values.get("name", "")) or None,
            status=values.get("status", "").lower() or "active",
            subscribed_at=_time(values.get("subscribed"), "subscribed"),
            confirmed_at=_time(values.get("confirmed"), "confirmed"),
        )
    except ValidationError as exc:
        prefix = f"{email}: " if email and "email address" not in str(exc) else ""
        raise ValidationError(f"{prefix}{exc}") from None


def _time(value: str | None, column: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{column} is not an ISO 8601 time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def export_rows(session: Session) -> Iterator[list[str]]:
    """Every subscriber as a CSV row, streamed in id order."""
    stmt = select(Subscriber).order_by(Subscriber.id).execution_options(yield_per=1000)
    for sub in session.scalars(stmt):
        yield [
            neutralise(sub.email),
            neutralise(sub.name or ""),
            sub.languages,
            sub.status.value,
            _iso(sub.created_at),
            _iso(sub.confirmed_at),
        ]


def write_subscriber_csv(session: Session, out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for row in export_rows(session):
        writer.writerow(row)
        count += 1
    return count


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else ""

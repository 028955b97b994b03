"""The subscriber CSV format: reading an import file row by row, writing an export.

A header row names the columns, in any order: `email` and `languages` (like `be,en`) are
required, `name` and `status` (blank means active) optional; `subscribed` and `confirmed`
(ISO 8601, as an export writes them) are accepted so an export can be imported again.
UTF-8, with or without a byte-order mark.

An export is safe to open in a spreadsheet (OWASP's rule against CSV injection): a cell that
begins with = + - @, a tab or a carriage return gets a leading apostrophe (so does one
that begins with an apostrophe), which spreadsheets
show as text and never evaluate; an import takes that apostrophe off again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

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


@dataclass
class ParsedFile:
    rows: list[tuple[int, NewSubscriber]] = field(default_factory=list)  # (line, row)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def read_subscriber_csv(path: str | Path) -> ParsedFile:
    """Validate every row; a file that cannot be read at all raises ImportFileError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(f"{path}: line {line} is not UTF-8 text") from None
    return parse_subscriber_csv(text, str(path))


def parse_subscriber_csv(text: str, name: str = "file") -> ParsedFile:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
        if header is None:
            raise ImportFileError(
                f"{name}: empty file (expected a header row: email,languages,...)"
            )
        columns = _columns(header, name)
        parsed = ParsedFile()
        first_line: dict[str, int] = {}
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(columns):
                parsed.rejected.append(
                    (line, f"{len(cells)} fields but the header has {len(columns)}")
                )
                continue
            values = dict(zip(columns, [c.strip() for c in cells], strict=False))
            try:
                row = _row(values)
            except ValidationError as exc:
                parsed.rejected.append((line, str(exc)))
                continue
            if row.email in first_line:
                parsed.rejected.append((line, f"{row.email} repeats line {first_line[row.email]}"))
                continue
            first_line[row.email] = line
            parsed.rows.append((line, row))
    except csv.Error as exc:
        raise ImportFileError(f"{name}: line {reader.line_num}: not valid CSV ({exc})") from None
    return parsed


def _columns(header: list[str], name: str) -> list[str]:
    columns = [cell.strip().lower() for cell in header]
    unknown = [c for c in columns if c not in REQUIRED + OPTIONAL]
    if unknown:
        expected = ", ".join(REQUIRED + OPTIONAL)
        raise ImportFileError(f"{name}: unknown column {unknown[0]!r} (columns: {expected})")
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

"""What the CLI's processes write to their log: one line per record, but a critical one
(a process ending on an error nobody expected) carries the traceback to report."""

from __future__ import annotations

import logging
import sys

from newsletter.cli import OneLineFormatter


def _record(level: int, message: str) -> logging.LogRecord:
    try:
        {}["hostname"]
    except KeyError:
        exc_info = sys.exc_info()
    return logging.LogRecord("celery.worker", level, __file__, 1, message, None, exc_info)


def test_an_error_with_an_exception_is_one_line() -> None:
    line = OneLineFormatter().format(_record(logging.ERROR, "could not publish job"))
    assert line == "error: could not publish job: 'hostname'"


def test_a_critical_record_carries_its_traceback() -> None:
    text = OneLineFormatter().format(_record(logging.CRITICAL, "Unrecoverable error"))
    first, *rest = text.splitlines()
    assert first == "critical: Unrecoverable error"
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "KeyError: 'hostname'"
    assert any('{}["hostname"]' in line for line in rest)


def test_a_record_without_an_exception_is_its_message() -> None:
    record = logging.LogRecord("newsletter", logging.CRITICAL, __file__, 1, "stopping", None, None)
    assert OneLineFormatter().format(record) == "critical: stopping"

"""ISO-week arithmetic."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from newsletter.editions import IsoWeek, parse_week, week_of
from newsletter.errors import ValidationError


def test_sample_week_runs_monday_to_sunday() -> None:
    """2020-W05 is Monday 27 January to Sunday 2 February 2020."""
    week = parse_week("2020-W05")
    assert (week.year, week.week) == (2020, 5)
    assert week.monday == date(2020, 1, 27)
    assert week.sunday == date(2020, 2, 2)
    assert str(week) == "2020-W05"


def test_week_of_dates_and_year_edges() -> None:
    """Dates map to their ISO week, including weeks that straddle a new year."""
    assert week_of(date(2020, 2, 2)) == IsoWeek(2020, 5)
    assert week_of(datetime(2020, 1, 27, 0, 1)) == IsoWeek(2020, 5)
    assert str(week_of(date(2021, 1, 3))) == "2020-W53"
    assert str(week_of(date(2019, 12, 30))) == "2020-W01"
    assert str(parse_week("2020-W01").previous()) == "2019-W52"
    assert str(parse_week("2020-W53").next()) == "2021-W01"
    assert parse_week("2020w5") == IsoWeek(2020, 5)


@pytest.mark.parametrize("text", ["2021-W53", "2020-W00", "2020-05", "last week", ""])
def test_bad_weeks_are_refused(text: str) -> None:
    """A week that does not exist or is badly written is a ValidationError."""
    with pytest.raises(ValidationError):
        parse_week(text)

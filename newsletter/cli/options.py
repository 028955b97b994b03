"""Options several commands share, each checked by the one domain rule behind it, so that a
malformed value gets the same one-line message from every command."""

from __future__ import annotations

from typing import Any

import click

from newsletter.editions import parse_week
from newsletter.languages import parse_fallback


def _week(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    # parse_week raises ValidationError: main() prints it as one line, exit 1.
    return None if value is None else str(parse_week(value))


def _fallback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    return parse_fallback(value)


def week_option(**kwargs: Any) -> Any:
    """--week 2020-W05, read as the domain reads weeks ('2020w5' is 2020-W05)."""
    return click.option(
        "--week", required=True, callback=_week, help="ISO week, e.g. 2020-W05", **kwargs
    )


def fallback_option(**kwargs: Any) -> Any:
    """--fallback be|ru|en: the language shown where a text is missing."""
    return click.option(
        "--fallback",
        default=None,
        metavar="be|ru|en",
        callback=_fallback,
        help="language shown where a text is missing",
        **kwargs,
    )

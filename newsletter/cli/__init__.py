"""The `newsletter` command: thin adapters over the domain; errors become one clear line."""

from __future__ import annotations

import sys

import click
from sqlalchemy.exc import OperationalError

from newsletter.cli import db as db_commands
from newsletter.cli.context import pass_runtime
from newsletter.errors import NewsletterError

__all__ = ["cli", "main", "pass_runtime"]


@click.group()
@click.version_option(package_name="newsletter")
def cli() -> None:
    """Situation in Belarus: the weekly trilingual digest."""


db_commands.register(cli)


def _register_optional() -> None:
    # Each command group lives in its own module; all are registered here.
    from newsletter.cli import demo, editions, sending, serve, staff, subscribers

    for module in (subscribers, staff, editions, sending, serve, demo):
        module.register(cli)


_register_optional()


def main(argv: list[str] | None = None) -> None:
    """Entry point: a NewsletterError or an unreachable database is one line, exit 1."""
    try:
        # Without standalone mode click returns ctx.exit(n)'s code instead of exiting.
        result = cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except NewsletterError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except OperationalError as exc:
        click.echo(f"error: database unavailable: {exc.orig}", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)

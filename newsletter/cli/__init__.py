"""The `newsletter` command: thin adapters over the domain; errors become one clear line."""

from __future__ import annotations

import gc
import importlib
import logging
import sys

import click
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from newsletter.cli.context import pass_runtime
from newsletter.errors import NewsletterError

__all__ = ["cli", "main", "pass_runtime"]

# Command name -> the module whose register() adds it. Modules load only when their command
# runs, so `newsletter status` does not pay for premailer, Celery or uvicorn imports.
COMMAND_MODULES = {
    "db": "db",
    "subscribers": "subscribers",
    "staff": "staff",
    "import": "editions",
    "preview": "editions",
    "send": "sending",
    "pause": "sending",
    "resume": "sending",
    "cancel": "sending",
    "retry": "sending",
    "status": "sending",
    "worker": "sending",
    "beat": "sending",
    "serve": "serve",
    "demo": "demo",
    "inbound": "inbound",
}


class LazyGroup(click.Group):
    """A group that imports a command's module the first time the command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            module = importlib.import_module(f"newsletter.cli.{COMMAND_MODULES[cmd_name]}")
            module.register(self)
        if not gc.isenabled():
            # Started by __main__.run with the collector off: start-up is over, and what it
            # made stays for good; the command's own garbage is collected from here on.
            gc.freeze()
            gc.enable()
        return self.commands.get(cmd_name)


def freeze_start_up(**_: object) -> None:
    """Move everything alive now out of the collector's sight for good, garbage first: for a
    long-lived process once it is ready (a worker after its warm-up), so that no later full
    collection walks the imports, templates and caches start-up made."""
    gc.collect()
    gc.freeze()
    logging.getLogger(__name__).info("start-up frozen: %d objects", gc.get_freeze_count())


@click.group(cls=LazyGroup)
@click.version_option(package_name="newsletter")
def cli() -> None:
    """Situation in Belarus: the weekly trilingual digest."""


class OneLineFormatter(logging.Formatter):
    """Log records on a terminal are one line: the exception's text, not its traceback.

    A critical record is the exception: it ends a process (a worker's "Unrecoverable
    error"), and its traceback is what an operator needs to report it."""

    def format(self, record: logging.LogRecord) -> str:
        exc = record.exc_info[1] if record.exc_info else None
        line = f"{record.levelname.lower()}: {record.getMessage()}"
        if exc is None:
            return line
        if record.levelno >= logging.CRITICAL:
            return f"{line}\n{self.formatException(record.exc_info)}"  # type: ignore[arg-type]
        return f"{line}: {exc}"


def _configure_logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])


def main(argv: list[str] | None = None) -> None:
    """Entry point: a NewsletterError or an unreachable database is one line, exit 1."""
    _configure_logging()
    try:
        # Without standalone mode click returns ctx.exit(n)'s code instead of exiting.
        result = cli.main(args=argv, prog_name="newsletter", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        # One line, like every other refusal: what was wrong, and where the help is.
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"error: {exc.format_message()}{where}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except NewsletterError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except (OperationalError, ProgrammingError) as exc:
        if _missing_table(exc):
            click.echo(
                "error: the database has no tables yet: run `newsletter db upgrade`", err=True
            )
        else:
            click.echo(f"error: database unavailable: {exc.orig}", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


def _missing_table(exc: DBAPIError) -> bool:
    text = str(exc.orig)
    return "no such table" in text or ("relation" in text and "does not exist" in text)

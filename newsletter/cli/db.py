"""`newsletter db upgrade`."""

from __future__ import annotations

import click

from newsletter import migrate
from newsletter.cli.context import pass_runtime
from newsletter.runtime import Runtime


@click.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
@pass_runtime
def upgrade(runtime: Runtime) -> None:
    """Apply every migration not yet applied."""
    migrate.upgrade(runtime.engine)
    click.echo("database is up to date")


def register(cli: click.Group) -> None:
    cli.add_command(db_group)

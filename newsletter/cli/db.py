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
    """Apply every migration not yet applied, and say which."""
    applied = migrate.upgrade(runtime.engine)
    at = ", ".join(migrate.current(runtime.engine)) or "no revision"
    if not applied:
        click.echo(f"nothing to apply: the database is already at {at}")
        return
    click.echo(f"applied {len(applied)} migration{'s' if len(applied) != 1 else ''}:")
    for step in applied:
        click.echo(f"  {step.revision} {step.doc}")
    click.echo(f"the database is now at {at}")


def register(cli: click.Group) -> None:
    cli.add_command(db_group)

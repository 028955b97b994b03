"""`newsletter staff ...`: staff accounts for the admin area and the JSON API."""

from __future__ import annotations

import sys

import click

from newsletter import staff
from newsletter.cli.context import pass_runtime
from newsletter.errors import ValidationError
from newsletter.models import StaffRole
from newsletter.runtime import Runtime


@click.group("staff")
def staff_group() -> None:
    """Staff accounts."""


def _read_password() -> str:
    """Prompt on a terminal; otherwise the first line of standard input (for scripts)."""
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    line = sys.stdin.readline()
    if not line:
        raise ValidationError("no password given on standard input")
    return line.rstrip("\r\n")


@staff_group.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice([r.value for r in StaffRole]),
    default=StaffRole.editor.value,
    show_default=True,
    help="editors write editions; admins also see subscribers",
)
@pass_runtime
def add(runtime: Runtime, name: str, role: str) -> None:
    """Add a staff user; the password is prompted for, or read from standard input."""
    password = _read_password()
    with runtime.session() as session:
        user = staff.create_staff(session, name, password, StaffRole(role))
        line = f"staff user {user.name} added ({user.role.value})"
    click.echo(line)


@staff_group.command("token")
@click.argument("name")
@click.option("--label", default="cli", show_default=True, help="what the token is for")
@pass_runtime
def token(runtime: Runtime, name: str, label: str) -> None:
    """Make an API bearer token for a staff user; it is shown this once."""
    with runtime.session() as session:
        user = staff.get_staff(session, name)
        clear = staff.create_api_token(session, user.id, label)
    click.echo(clear)


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(staff_group)

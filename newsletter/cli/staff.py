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


@staff_group.command("list")
@pass_runtime
def list_(runtime: Runtime) -> None:
    """Staff accounts: name, role, enabled or disabled, since when."""
    with runtime.session() as session:
        lines = [
            f"{u.name}\t{u.role.value}\t{'disabled' if u.disabled_at else 'enabled'}"
            f"\t{u.created_at:%Y-%m-%d}"
            for u in staff.list_staff(session)
        ]
    for line in lines:
        click.echo(line)


@staff_group.command("passwd")
@click.argument("name")
@pass_runtime
def passwd(runtime: Runtime, name: str) -> None:
    """Set a new password (prompted, or read from standard input); ends the account's sessions."""
    with runtime.session() as session:
        staff.get_staff(session, name)  # an unknown name fails before the prompt
    password = _read_password()
    with runtime.session() as session:
        user = staff.set_password(session, name, password)
        line = f"password of {user.name} changed; its sessions have ended"
    click.echo(line)


@staff_group.command("disable")
@click.argument("name")
@pass_runtime
def disable(runtime: Runtime, name: str) -> None:
    """Disable an account: its sessions end, its login and API tokens stop working."""
    with runtime.session() as session:
        user = staff.disable(session, name)
        line = f"{user.name} disabled; its sessions have ended and its API tokens are refused"
    click.echo(line)


@staff_group.command("enable")
@click.argument("name")
@pass_runtime
def enable(runtime: Runtime, name: str) -> None:
    """Enable a disabled account again (its API tokens work again)."""
    with runtime.session() as session:
        user = staff.enable(session, name)
        line = f"{user.name} enabled"
    click.echo(line)


@staff_group.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice([r.value for r in StaffRole]))
@pass_runtime
def role(runtime: Runtime, name: str, role: str) -> None:
    """Give an account another role; ends its sessions."""
    with runtime.session() as session:
        user = staff.set_role(session, name, role)
        line = f"{user.name} is now {user.role.value}; its sessions have ended"
    click.echo(line)


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(staff_group)

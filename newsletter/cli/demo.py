"""`newsletter demo`: the main job on the embedded default, in a folder of its own."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("newsletter-demo"),
    show_default=True,
    help="Folder made afresh for the demo (its database, outbox and previews).",
)
def demo(folder: Path) -> None:
    """Import the sample week, add readers in every language set, send it into a Maildir."""
    from newsletter.demo import run_demo

    started = time.perf_counter()
    report = run_demo(folder, os.environ)
    elapsed = time.perf_counter() - started
    cwd = Path.cwd()

    def show(path: Path) -> str:
        return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)

    click.echo(f"Sent edition {report.week} to {len(report.delivered)} readers in {elapsed:.1f} s.")
    click.echo("")
    click.echo(f"  {'reader':34} {'languages':10} subject / file")
    for item in report.delivered:
        click.echo(f"  {item.email:34} {item.languages:10} {item.subject}")
        click.echo(f"  {'':34} {'':10} {show(item.path)}")
    for address, status in sorted(report.not_sent.items()):
        click.echo(f"  {address:34} {'-':10} nothing sent ({status})")
    click.echo("")
    click.echo(f"Database:  {show(report.database)}")
    click.echo(f"Outbox:    {show(report.outbox)}/new  (Maildir; each file is one email)")
    click.echo("Preview in a browser (one page per language set received):")
    for langs, path in sorted(report.previews.items(), key=lambda kv: (len(kv[0]), kv[0])):
        click.echo(f"  {langs:10} {path.as_uri()}")
    click.echo("")
    click.echo("Browse the archive and the subscribe pages of this demo:")
    click.echo(f"  NEWSLETTER_DATABASE_URL=sqlite:///{show(report.database)} newsletter serve")


def register(cli: click.Group) -> None:
    cli.add_command(demo)

"""`newsletter import FILE.yaml` and `newsletter preview --week W --lang be[,en] [--out F]`."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter import editions
from newsletter.cli.context import pass_runtime
from newsletter.runtime import Runtime


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@pass_runtime
def import_command(runtime: Runtime, file: Path) -> None:
    """Import or update a week's edition from a YAML file (all-or-nothing)."""
    with runtime.session() as session:
        result = editions.import_edition(session, file)
        edition = result.edition
        missing = editions.missing_translations(edition)
        week, count = edition.week, len(edition.articles)
    verb = "imported" if result.created else "updated"
    click.echo(f"{verb} edition {week} from {file}: {count} article(s)")
    for label, slugs in (
        ("added", result.added),
        ("updated", result.updated),
        ("kept (not in the file; delete them in the admin if meant)", result.kept),
        ("new topics", result.topics_added),
    ):
        if slugs:
            click.echo(f"  {label}: {', '.join(slugs)}")
    for slug, langs in missing.items():
        click.echo(f"  missing translation: {slug}: {', '.join(langs)}")


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(import_command)

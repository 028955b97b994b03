"""`newsletter import FILE.yaml` and `newsletter preview --week W --lang be[,en] [--out F]`."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

import click

from newsletter import editions
from newsletter.cli.context import pass_runtime
from newsletter.languages import parse_languages
from newsletter.messages import preview_message
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


@click.command("preview")
@click.option("--week", required=True, help="ISO week, e.g. 2020-W05")
@click.option("--lang", "langs", required=True, help="the reader's languages in order, e.g. be,en")
@click.option("--fallback", default=None, help="language shown where a text is missing")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="write FILE.html (the HTML part) or FILE.eml (the whole message); default: HTML to stdout",
)
@click.option("--to", "to_email", default="reader@example.org", show_default=True)
@pass_runtime
def preview_command(
    runtime: Runtime,
    week: str,
    langs: str,
    fallback: str | None,
    out: Path | None,
    to_email: str,
) -> None:
    """Show what a subscriber with these languages would receive."""
    languages = parse_languages(langs)
    with runtime.session() as session:
        edition = editions.get_edition(session, week)
        message = preview_message(
            session, runtime.settings, edition, languages, fallback_language=fallback, to=to_email
        )
    if out is not None and out.suffix.lower() == ".eml":
        out.write_bytes(message)
        click.echo(f"wrote {out} ({len(message)} bytes)")
        return
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    body = parsed.get_body(("html",))
    html = body.get_content() if body is not None else ""
    if out is None:
        click.echo(html, nl=False)
    else:
        out.write_text(html, encoding="utf-8")
        click.echo(f"wrote {out} ({len(html.encode())} bytes of HTML)")


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(import_command)
    cli.add_command(preview_command)

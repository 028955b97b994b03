"""`newsletter import FILE.yaml` and `newsletter preview --week W --lang be[,en] [--out F]`."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

import click

from newsletter import editions
from newsletter.cli.context import pass_runtime
from newsletter.cli.options import fallback_option, week_option
from newsletter.errors import ValidationError
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


# What --out writes, by the file's suffix: the whole message, or its HTML part.
OUT_KINDS = {".eml": "eml", ".html": "html", ".htm": "html"}


def _out(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    """Refuse a FILE whose type the name does not say, or whose folder is missing, before
    anything is rendered: one line, not a traceback after the work."""
    if value is None:
        return None
    if value.suffix.lower() not in OUT_KINDS:
        raise ValidationError(
            f"--out {value}: the name must end in .eml (the whole message) or .html (the HTML part)"
        )
    folder = value.parent
    if not folder.is_dir():
        raise ValidationError(f"--out {value}: there is no folder {folder}")
    if value.is_dir():
        raise ValidationError(f"--out {value} is a folder, not a file")
    return value


@click.command("preview")
@week_option()
@click.option("--lang", "langs", required=True, help="the reader's languages in order, e.g. be,en")
@fallback_option()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    callback=_out,
    help="write FILE.eml (the whole message) or FILE.html (the HTML part); default: HTML to stdout",
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
    if out is not None and OUT_KINDS[out.suffix.lower()] == "eml":
        _write(out, message)
        click.echo(f"wrote {out} ({len(message)} bytes: the whole message)")
        return
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    body = parsed.get_body(("html",))
    html = body.get_content() if body is not None else ""
    if out is None:
        click.echo(html, nl=False)
    else:
        _write(out, html.encode("utf-8"))
        click.echo(f"wrote {out} ({len(html.encode())} bytes of HTML)")


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:  # permissions, a full disk, the folder removed meanwhile
        raise ValidationError(f"--out {path}: cannot write it: {exc.strerror or exc}") from exc


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(import_command)
    cli.add_command(preview_command)

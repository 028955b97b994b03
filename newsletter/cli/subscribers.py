"""`newsletter subscribers ...`: add, list, unsubscribe, import, export and forget readers."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from sqlalchemy import select

from newsletter import subscriptions
from newsletter.cli.context import pass_runtime
from newsletter.dispatch.confirmation import send_confirmation
from newsletter.errors import (
    NotFound,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    ValidationError,
)
from newsletter.models import EventSource, Subscriber, SubscriberStatus
from newsletter.runtime import Runtime
from newsletter.subscriber_csv import (
    CHUNK_ROWS,
    read_chunks,
    scan_subscriber_csv,
    write_subscriber_csv,
)
from newsletter.transport import Outcome, destination


@click.group("subscribers")
def subscribers_group() -> None:
    """The readers of the digest."""


@subscribers_group.command("add")
@click.argument("email")
@click.option("--lang", "languages", required=True, help="ordered languages, e.g. be,en")
@click.option("--name", default=None, help="the reader's name")
@click.option("--confirmed", is_flag=True, help="active at once (no confirmation email)")
@pass_runtime
def add(runtime: Runtime, email: str, languages: str, name: str | None, confirmed: bool) -> None:
    """Add one reader; without --confirmed they are sent a confirmation email."""
    settings = runtime.settings
    with runtime.session() as session:
        sub = subscriptions.add_subscriber(
            session,
            settings.secret_key,
            email,
            languages,
            name=name,
            confirmed=confirmed,
            source=EventSource.staff,
        )
        pending = sub.status == SubscriberStatus.pending
        if pending and settings.broker_url:
            runtime.jobs.enqueue(session, "send_confirmation", subscriber_id=sub.id)
        subscriber_id = sub.id
        line = f"added {sub.email} ({sub.status.value}, {sub.languages})"
    if not pending:
        click.echo(line)
        return
    where = destination(settings)
    if settings.broker_url:
        click.echo(f"{line}; the confirmation email is queued: a worker sends it to {where}")
        return
    # No broker: send it here and now, so that the line says what became of it.
    click.echo(line)
    # The line below says how it went: the job's own warning would say it twice.
    job_log = logging.getLogger(send_confirmation.__module__)
    level = job_log.level
    job_log.setLevel(logging.ERROR)
    try:
        result = send_confirmation(runtime.sessions, settings, runtime.transport, subscriber_id)
    except OSError as exc:  # e.g. the outbox folder cannot be written
        raise TemporaryDeliveryError(
            f"the confirmation email could not be handed to {where}: {exc.strerror or exc}"
        ) from exc
    finally:
        job_log.setLevel(level)
    if result is None or result.outcome is Outcome.ok:
        verb = "written into" if not settings.smtp_url else "accepted by"
        click.echo(f"the confirmation email was {verb} {where}")
    elif result.outcome is Outcome.permanent and not result.blocked:  # the address itself
        raise PermanentDeliveryError(f"{where} refused the confirmation email: {result.reply}")
    else:
        raise TemporaryDeliveryError(
            f"the confirmation email could not be handed to {where}: {result.reply}; "
            "the tick tries again (`newsletter beat`, or `serve`)"
        )


@subscribers_group.command("list")
@click.option(
    "--status",
    type=click.Choice([s.value for s in SubscriberStatus]),
    default=None,
    help="only readers in this state",
)
@pass_runtime
def list_(runtime: Runtime, status: str | None) -> None:
    """One reader per line: email, status, languages, name (tab-separated)."""
    stmt = select(Subscriber).order_by(Subscriber.email).execution_options(yield_per=1000)
    if status:
        stmt = stmt.where(Subscriber.status == SubscriberStatus(status))
    count = 0
    with runtime.session() as session:
        for sub in session.scalars(stmt):
            click.echo(f"{sub.email}\t{sub.status.value}\t{sub.languages}\t{sub.name or ''}")
            count += 1
    if not count:
        click.echo("no subscribers" + (f" with status {status}" if status else ""), err=True)


@subscribers_group.command("unsubscribe")
@click.argument("email")
@pass_runtime
def unsubscribe(runtime: Runtime, email: str) -> None:
    """Stop all mail to a reader (recorded as done by staff)."""
    normalised = subscriptions.normalise_email(email)
    with runtime.session() as session:
        sub = subscriptions.get_by_email(session, normalised)
        if sub is None:
            raise NotFound(f"no subscriber with address {normalised}")
        before = sub.status
        subscriptions.unsubscribe(session, sub.id, source=EventSource.staff)
    if before == sub.status:
        click.echo(f"{normalised} was already {before.value}; nothing changed")
    else:
        click.echo(f"unsubscribed {normalised}")


@subscribers_group.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--chunk",
    type=click.IntRange(1, 100_000),
    default=CHUNK_ROWS,
    show_default=True,
    help="rows written and committed together",
)
@pass_runtime
def import_(runtime: Runtime, file: Path, chunk: int) -> None:
    """Import readers from a CSV file (header: email, name, languages, status).

    The whole file is checked first (encoding, quoting, header); then rows are imported
    and committed CHUNK at a time, with progress on standard error. Rejected rows are
    reported by line; an interrupted import can simply be run again (present addresses
    are skipped).
    """
    total = scan_subscriber_csv(file)
    added = pending = existing = rejected = done = 0
    for rows in read_chunks(file, chunk):
        valid = [(line, row) for line, row in rows if not isinstance(row, str)]
        problems = [(line, row) for line, row in rows if isinstance(row, str)]
        with runtime.session() as session:
            result = subscriptions.import_subscribers(
                session, runtime.settings.secret_key, [row for _, row in valid]
            )
            pending_ids = result.pending_ids([row for _, row in valid])
            for subscriber_id in pending_ids:
                runtime.jobs.enqueue(session, "send_confirmation", subscriber_id=subscriber_id)
        line_of = {row.email: line for line, row in valid}
        problems += [
            (
                line_of[email],
                f"{email} was erased at the person's request and cannot be added again",
            )
            for email in result.suppressed
        ]
        for line, reason in sorted(problems):
            click.echo(f"line {line}: {reason}", err=True)
        added += len(result.added)
        pending += len(pending_ids)
        existing += len(result.existing)
        rejected += len(problems)
        done += len(rows)
        if total > chunk:
            click.echo(f"... {done} of {total} rows", err=True)
    summary = f"imported {added}"
    if pending:
        summary += f" ({pending} pending: confirmation emails are on their way)"
    summary += f", skipped {existing} already present, rejected {rejected}"
    click.echo(summary)
    if rejected:
        raise click.exceptions.Exit(1)


@subscribers_group.command("export")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@pass_runtime
def export(runtime: Runtime, file: Path) -> None:
    """Write every reader to a CSV file ('-' for standard output)."""
    with runtime.session() as session:
        if str(file) == "-":
            write_subscriber_csv(session, sys.stdout)
            return
        try:
            with file.open("w", encoding="utf-8", newline="") as out:
                count = write_subscriber_csv(session, out)
        except OSError as exc:
            raise ValidationError(f"{file}: cannot write it ({exc.strerror})") from None
    click.echo(f"exported {count} subscribers to {file}")


@subscribers_group.command("forget")
@click.argument("email")
@pass_runtime
def forget(runtime: Runtime, email: str) -> None:
    """Erase a reader's data; only a keyed hash stays so the address is never added again."""
    normalised = subscriptions.normalise_email(email)
    with runtime.session() as session:
        subscriptions.forget(
            session, runtime.settings.secret_key, normalised, source=EventSource.staff
        )
    click.echo(f"forgot {normalised}: their data is erased; the address cannot be added again")


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(subscribers_group)

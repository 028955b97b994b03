"""`newsletter send|pause|resume|cancel|retry|status` and the `worker` and `beat` processes."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import click

from newsletter import dispatch
from newsletter.cli import options
from newsletter.cli.context import pass_runtime
from newsletter.errors import ConfigError, SendPaused, ValidationError
from newsletter.jobs import InProcessJobs
from newsletter.languages import LANGUAGE_SETS
from newsletter.models import EditionStatus, utcnow
from newsletter.runtime import Runtime

week_option = options.week_option()


def parse_at(text: str, tz: ZoneInfo, *, now: datetime | None = None) -> datetime:
    """ISO 8601; without an offset it is local time in NEWSLETTER_TIMEZONE. Never the past."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValidationError(f"--at wants ISO 8601 like 2020-02-03T09:00, not {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    if moment < (now or utcnow()) - timedelta(minutes=1):
        raise ValidationError(f"--at {text} is in the past")
    return moment


def _print_progress(p: dispatch.Progress) -> None:
    click.echo(
        f"{p.week}: {p.status} — queued {p.queued}, sending {p.sending}, sent {p.sent}, "
        f"failed {p.failed}, skipped {p.skipped} (total {p.total}"
        + (", more being planned)" if p.planning else ")")
    )
    if p.reason and p.status in (EditionStatus.paused, EditionStatus.draft):
        click.echo(
            f"{p.week}: {'paused' if p.status is EditionStatus.paused else 'waits'}: {p.reason}"
        )


@click.command()
@week_option
@click.option("--at", "at_text", metavar="TIME", help="send later (ISO 8601; local if no offset)")
@click.option("--test-to", metavar="EMAIL", help="send one copy of each variant here instead")
@click.option("--all-sets", is_flag=True, help="with --test-to: all 15 language sets")
@options.fallback_option()
@click.option("--wait", is_flag=True, help="show a progress bar until the send is done")
@pass_runtime
def send(
    runtime: Runtime,
    week: str,
    at_text: str | None,
    test_to: str | None,
    all_sets: bool,
    fallback: str | None,
    wait: bool,
) -> None:
    """Send an edition now, or schedule it; returns once it is planned and queued."""
    settings = runtime.settings
    if test_to:
        with runtime.session() as session:
            sets = dispatch.send_test(
                session,
                settings,
                week,
                test_to,
                runtime.transport,
                language_sets=LANGUAGE_SETS if all_sets else None,
                fallback_language=fallback,
            )
        names = "; ".join(",".join(s) for s in sets)
        click.echo(
            f"sent {len(sets)} test cop{'y' if len(sets) == 1 else 'ies'} to {test_to}: {names}"
        )
        return
    at = parse_at(at_text, settings.tz) if at_text else None
    with runtime.session() as session:
        started = dispatch.start_send(
            session, settings, week, at=at, fallback_language=fallback, jobs=runtime.jobs
        )
    if started.status is EditionStatus.scheduled:
        assert started.scheduled_at is not None
        local = started.scheduled_at.astimezone(settings.tz)
        click.echo(f"{started.week} scheduled for {local:%Y-%m-%d %H:%M %Z}")
        return
    rest = (
        f"; the rest of the list is planned in chunks of {settings.plan_chunk}"
        if started.planning
        else ""
    )
    click.echo(
        f"{started.week}: {started.total} deliveries planned "
        f"({started.planned} new), {started.batches} batch(es) queued{rest}"
    )
    if wait:
        _wait(runtime, started.week)
    else:
        with runtime.session() as session:
            _print_progress(dispatch.progress(session, started.week))


def _wait(runtime: Runtime, week: str) -> None:
    in_process = isinstance(runtime.jobs, InProcessJobs)
    with runtime.session() as session:
        first = dispatch.progress(session, week)
    shown = 0
    with click.progressbar(length=max(first.total, 1), label=f"sending {week}") as bar:
        while True:
            with runtime.session() as session:
                if in_process:  # no beat here: retries that fall due are ours to run
                    dispatch.tick(session, runtime.settings, runtime.jobs, idle_after=0)
            with runtime.session() as session:
                p = dispatch.progress(session, week)
            bar.length = max(p.total, 1)  # grows while the list is being planned
            bar.update(p.done - shown)
            shown = p.done
            if p.status not in (EditionStatus.sending,):
                break
            time.sleep(0.5)
    _print_progress(p)
    if p.status is EditionStatus.paused:
        # Not done: a script waiting on the send must not carry on as if it were.
        raise SendPaused(f"{week} is paused: {p.reason or 'by staff'}")


@click.command()
@week_option
@pass_runtime
def pause(runtime: Runtime, week: str) -> None:
    """Pause a running send (workers stop after the messages they hold)."""
    with runtime.session() as session:
        edition = dispatch.pause(session, week)
        click.echo(f"{edition.week}: paused")


@click.command()
@week_option
@pass_runtime
def resume(runtime: Runtime, week: str) -> None:
    """Resume a paused send."""
    with runtime.session() as session:
        edition = dispatch.resume(session, week, settings=runtime.settings, jobs=runtime.jobs)
        click.echo(f"{edition.week}: {edition.status}")


@click.command()
@week_option
@pass_runtime
def cancel(runtime: Runtime, week: str) -> None:
    """Cancel a scheduled, running or paused send for good."""
    with runtime.session() as session:
        edition = dispatch.cancel(session, week)
        click.echo(f"{edition.week}: cancelled ({edition.sent_count} sent before)")


@click.command()
@week_option
@pass_runtime
def retry(runtime: Runtime, week: str) -> None:
    """Queue the failed deliveries of an edition again (readers still active)."""
    with runtime.session() as session:
        count = dispatch.retry_failed(session, week, settings=runtime.settings, jobs=runtime.jobs)
    with runtime.session() as session:
        p = dispatch.progress(session, week)
    later = " (paused: `newsletter resume` sends them)" if p.status is EditionStatus.paused else ""
    click.echo(f"{p.week}: {count} failed deliveries queued again{later}")
    _print_progress(p)


@click.command()
@week_option
@pass_runtime
def status(runtime: Runtime, week: str) -> None:
    """Queued, sent, failed and skipped counts of an edition's send."""
    with runtime.session() as session:
        _print_progress(dispatch.progress(session, week))


def _celery_app(runtime: Runtime, what: str, tick_every: float | None = None):  # type: ignore[no-untyped-def]
    if not runtime.settings.broker_url:
        raise ConfigError(
            f"`newsletter {what}` needs a broker: set NEWSLETTER_BROKER_URL "
            "(e.g. redis://127.0.0.1:6379/0); without one, sends run in-process"
        )
    from workers.celery_app import create_app

    return create_app(runtime.settings, tick_every=tick_every)


@click.command()
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="processes (1: a single process, the simplest to supervise)",
)
@click.option("--loglevel", default="INFO", show_default=True)
@pass_runtime
def worker(runtime: Runtime, concurrency: int, loglevel: str) -> None:
    """Run a Celery worker that sends batches (needs NEWSLETTER_BROKER_URL)."""
    from celery.signals import worker_ready

    from newsletter.cli import freeze_start_up

    app = _celery_app(runtime, "worker")
    # Celery's machinery and the warm-up (workers.tasks) are made after the process entry
    # froze start-up: frozen as well once the worker is ready. Otherwise each full collection
    # walked them all, 8 % of a send's instructions per email where one fell in (callgrind).
    worker_ready.connect(freeze_start_up, weak=False)
    pool = ["--pool=solo"] if concurrency == 1 else [f"--concurrency={concurrency}"]
    app.worker_main(
        ["worker", f"--loglevel={loglevel}", "--without-gossip", "--without-mingle", *pool]
    )


@click.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=None,
    show_default="$NEWSLETTER_TICK_EVERY or 30",
    help="seconds between ticks",
)
@click.option("--loglevel", default="INFO", show_default=True)
@pass_runtime
def beat(runtime: Runtime, interval: float | None, loglevel: str) -> None:
    """Run the schedule: Celery beat with a broker, otherwise ticks in this process."""
    if runtime.settings.broker_url:
        app = _celery_app(runtime, "beat", tick_every=interval)
        # The schedule is one fixed interval: keep it in memory, write no file.
        app.start(["beat", f"--loglevel={loglevel}", "--scheduler=celery.beat:Scheduler"])
        return
    from newsletter.ticker import Ticker

    ticker = Ticker(runtime, interval)
    click.echo(
        f"no broker: ticking in-process every {ticker.every:g}s, unless `serve` or another "
        "`beat` of this installation already does (Ctrl-C stops)"
    )
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(message)s")
    ticker.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        ticker.stop()


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    for command in (send, pause, resume, cancel, retry, status, worker, beat):
        cli.add_command(command)


__all__ = ["parse_at", "register"]

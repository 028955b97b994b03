"""`newsletter inbound`: receive bounces, complaints and mailed unsubscribes (SMTP/LMTP or IMAP)."""

from __future__ import annotations

import logging
import time

import click

from newsletter.cli.context import pass_runtime
from newsletter.inbound.intake import Intake
from newsletter.runtime import Runtime

log = logging.getLogger(__name__)


def _host_port(text: str) -> tuple[str, int]:
    """HOST:PORT or [IPv6]:PORT."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT, like 127.0.0.1:2525, not {text!r}")
    return host, int(port)


@click.command("inbound")
@click.option("--listen", metavar="HOST:PORT", help="run an SMTP server for the inbound address")
@click.option("--lmtp", is_flag=True, help="speak LMTP rather than SMTP (with --listen)")
@click.option(
    "--imap", "imap_url", metavar="URL", help="read a mailbox: imaps://user:pass@host/INBOX"
)
@click.option(
    "--every",
    type=click.FloatRange(min=5),
    default=None,
    help="with --imap: read the mailbox again every SECONDS (default: once)",
)
@pass_runtime
def inbound(
    runtime: Runtime,
    listen: str | None,
    lmtp: bool,
    imap_url: str | None,
    every: float | None,
) -> None:
    """Receive what comes back to NEWSLETTER_INBOUND_ADDRESS: bounces, complaints,
    auto-replies and mailed unsubscribes."""
    if bool(listen) == bool(imap_url):
        raise click.UsageError("give exactly one of --listen HOST:PORT or --imap URL")
    if lmtp and not listen:
        raise click.UsageError("--lmtp goes with --listen")
    if every is not None and not imap_url:
        raise click.UsageError("--every goes with --imap")
    logging.getLogger("newsletter").setLevel(logging.INFO)
    intake = Intake(runtime)
    if listen:
        _listen(intake, *_host_port(listen), lmtp=lmtp)
    else:
        assert imap_url is not None
        _poll(intake, imap_url, every)


def _listen(intake: Intake, host: str, port: int, *, lmtp: bool) -> None:
    from newsletter.inbound.server import InboundServer, run

    server = InboundServer(intake, lmtp=lmtp)

    def started(bound_host: str, bound_port: int) -> None:
        click.echo(
            f"receiving mail for {intake.address} and its +token forms on "
            f"{bound_host}:{bound_port} ({'LMTP' if lmtp else 'SMTP'})",
        )

    try:
        run(server, host, port, started)
    except OSError as exc:
        reason = exc.strerror or exc
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from exc


def _poll(intake: Intake, url: str, every: float | None) -> None:
    from newsletter.inbound.imap import ImapError, ImapSource, poll_once

    source = ImapSource.from_url(url)
    while True:
        try:
            taken = poll_once(source, intake)
            click.echo(f"{taken} message(s) taken from {source.host}/{source.mailbox}")
            intake.purge()
        except ImapError as exc:
            if every is None:
                raise click.ClickException(str(exc)) from exc
            log.warning("%s; trying again in %s s", exc, every)
        if every is None:
            return
        time.sleep(every)


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(inbound)

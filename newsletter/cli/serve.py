"""`newsletter serve`: the web app under uvicorn, in one process or several on one port."""

from __future__ import annotations

import copy
import errno
import ipaddress
import os
import socket
from typing import Any
from urllib.parse import urlsplit

import click

from newsletter.cli.context import pass_runtime
from newsletter.runtime import Runtime

WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="the number of cores",
    help="Processes serving the one port (state they share lives in the database or Redis).",
)
@click.option(
    "--forwarded-allow-ips",
    default=lambda: os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
    show_default="$FORWARDED_ALLOW_IPS or 127.0.0.1",
    help="Reverse proxies whose X-Forwarded-For/-Proto are trusted (comma-separated, or '*').",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="Log every request (a proxy in front often logs them already).",
)
@pass_runtime
def serve(
    runtime: Runtime,
    host: str,
    port: int,
    workers: int,
    forwarded_allow_ips: str,
    access_log: bool,
) -> None:
    """Serve the public pages, the staff area and the API.

    Without a broker it also runs the scheduler's tick (one process per installation)."""
    from newsletter.cli.listening import TcpConfig
    from newsletter.cli.listening import run as run_server

    settings = runtime.settings
    port = _free_to_listen(host, port)
    served = f"http://{_url_host(host)}:{port}"
    if settings.base_url_set:
        base_url = settings.base_url
        if not _same_place(base_url, host, port):
            click.echo(
                f"note: emailed links point at NEWSLETTER_BASE_URL {base_url}, not at {served} "
                "where this server listens (right behind a proxy that forwards there)"
            )
    else:
        # The worker processes build their settings from the environment: hand it to them.
        base_url = os.environ["NEWSLETTER_BASE_URL"] = served
    processes = "1 process" if workers == 1 else f"{workers} processes"
    click.echo(f"serving {base_url} on {served} ({processes})")
    if not settings.broker_url:
        click.echo("no broker: this server also runs the scheduler's tick")
    config = TcpConfig(
        "newsletter.web.app:serve_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # Behind the proxy the client address and scheme come from its headers, and only
        # from the proxies listed: anyone else could forge them (and dodge the rate limit).
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        access_log=access_log,
        log_config=_log_config(),
        log_level="info",
    )
    # Not uvicorn.run: its worker processes would serve without TCP_NODELAY (see listening).
    run_server(config)


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with our own loggers (scheduler, errors) printed beside it."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for name in ("newsletter", "workers"):
        config["loggers"][name] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _free_to_listen(host: str, port: int) -> int:
    """The port to serve (port 0: a free one), or one clear line when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            why = "it is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise click.ClickException(f"cannot listen on {host}:{port}: {why}") from exc
        return int(probe.getsockname()[1])


def _url_host(host: str) -> str:
    """The host as a URL names it; a wildcard address becomes this machine's loopback."""
    host = WILDCARDS.get(host, host)
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:  # a name
        return host


def _same_place(base_url: str, host: str, port: int) -> bool:
    parts = urlsplit(base_url)
    base_port = parts.port or (443 if parts.scheme == "https" else 80)
    if base_port != port or parts.scheme != "http":
        return False
    return host in WILDCARDS or (parts.hostname or "") == host.strip("[]")


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(serve)

"""`newsletter serve`: the web app under uvicorn."""

from __future__ import annotations

import os

import click

from newsletter.cli.context import pass_runtime
from newsletter.runtime import Runtime


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--forwarded-allow-ips",
    default=lambda: os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
    show_default="$FORWARDED_ALLOW_IPS or 127.0.0.1",
    help="Reverse proxies whose X-Forwarded-For/-Proto are trusted (comma-separated, or '*').",
)
@pass_runtime
def serve(runtime: Runtime, host: str, port: int, forwarded_allow_ips: str) -> None:
    """Serve the public pages, the staff area and the API."""
    import uvicorn

    from newsletter.web.app import create_app

    app = create_app(runtime.settings, runtime=runtime)
    click.echo(f"serving {runtime.settings.base_url} on http://{host}:{port}")
    uvicorn.run(
        app,
        host=host,
        port=port,
        # Behind the proxy the client address and scheme come from its headers, and only
        # from the proxies listed: anyone else could forge them (and dodge the rate limit).
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        log_level="info",
    )


def register(cli: click.Group) -> None:
    """Add this module's commands to the CLI."""
    cli.add_command(serve)

"""`newsletter serve`: the real uvicorn server, as a deployment runs it."""

from __future__ import annotations

import gc

import httpx
import pytest

from newsletter.web.app import serve_app


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_behind_a_proxy(serve, free_tcp_port: int) -> None:  # type: ignore[no-untyped-def]
    """Scenario: an operator starts `newsletter serve` behind a proxy on 127.0.0.1: health,
    pages and headers are right, and each client is limited by its own forwarded address."""
    server = serve(
        free_tcp_port,
        NEWSLETTER_BASE_URL=f"http://127.0.0.1:{free_tcp_port}",
        FORWARDED_ALLOW_IPS="127.0.0.1",
    )

    def subscribe(http: httpx.Client, n: int, client_ip: str) -> httpx.Response:
        return http.post(
            "/en/subscribe",
            data={"email": f"r{n}@example.org", "languages": ["en"]},
            headers={"X-Forwarded-For": client_ip, "X-Forwarded-Proto": "https"},
        )

    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        root = http.get("/", headers={"Accept-Language": "ru,en;q=0.5"})
        assert (root.status_code, root.headers["location"]) == (302, "/ru/")
        page = http.get("/ru/")
        assert page.status_code == 200
        assert "Подпишитесь на нашу рассылку" in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert "server" not in page.headers  # no version banner
        first = subscribe(http, 0, "203.0.113.7")
        assert first.status_code == 200
        assert "Almost done" in first.text
        codes = [subscribe(http, n, "203.0.113.7").status_code for n in range(1, 11)]
        assert codes == [200] * 9 + [429]  # 10 per client address and hour
        assert subscribe(http, 99, "198.51.100.20").status_code == 200  # another client


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_help(cli) -> None:  # type: ignore[no-untyped-def]
    """Scenario: `newsletter serve --help` names its options."""
    result = cli("serve", "--help")
    assert result.returncode == 0
    for option in ("--host", "--port", "--workers", "--forwarded-allow-ips", "--no-access-log"):
        assert option in result.stdout


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_serving_process_settles_before_its_first_request(  # type: ignore[no-untyped-def]
    settings, engine, env_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scenario: uvicorn builds the app in a worker process (serve_app): the job publisher is
    ready before any request, and what is loaded by then is frozen out of the collector's
    full passes (which otherwise stopped the process for ~150 ms every few seconds)."""
    for name, value in env_for(settings).items():
        monkeypatch.setenv(name, value)
    frozen = gc.get_freeze_count()
    app = serve_app()
    try:
        assert "jobs" in app.state.runtime.__dict__  # built, not left to the first subscribe
        assert gc.get_freeze_count() > frozen + 10_000  # the modules, the app, its templates
    finally:
        gc.unfreeze()  # this is a test process: its objects must stay collectable
        app.state.runtime.dispose()

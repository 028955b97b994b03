"""`newsletter serve`: the real uvicorn server, as a deployment runs it."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_answers_pages_and_health(serve, free_tcp_port: int) -> None:  # type: ignore[no-untyped-def]
    """Scenario: an operator starts `newsletter serve`; health, pages and headers are right."""
    server = serve(free_tcp_port, NEWSLETTER_BASE_URL=f"http://127.0.0.1:{free_tcp_port}")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        root = http.get("/", headers={"Accept-Language": "ru,en;q=0.5"})
        assert (root.status_code, root.headers["location"]) == (302, "/ru/")
        page = http.get("/ru/")
        assert page.status_code == 200
        assert "Подпишитесь на нашу рассылку" in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert "server" not in page.headers  # no version banner
        subscribed = http.post(
            "/en/subscribe",
            data={"email": "cli@example.org", "languages": ["en"]},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        assert subscribed.status_code == 200
        assert "Almost done" in subscribed.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_help(cli) -> None:  # type: ignore[no-untyped-def]
    """Scenario: `newsletter serve --help` names its options."""
    result = cli("serve", "--help")
    assert result.returncode == 0
    for option in ("--host", "--port", "--forwarded-allow-ips"):
        assert option in result.stdout

"""The app itself: health check, security headers, error pages and JSON errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from newsletter import dispatch
from newsletter.config import Settings
from newsletter.models import SchedulerState, utcnow
from newsletter.runtime import Runtime
from newsletter.web.app import create_app
from newsletter.web.lang import negotiate


def test_healthz(client: TestClient, runtime: Runtime) -> None:
    """Scenario: a load balancer asks /healthz and hears the app and database are fine, and
    whether the scheduler ticks: never yet, just now, then not for two intervals."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "scheduler": "not running", "last_tick": None}
    with runtime.session() as session:
        dispatch.tick(session, runtime.settings, runtime.jobs)
    body = client.get("/healthz").json()
    assert (body["status"], body["scheduler"]) == ("ok", "running")
    assert body["last_tick"] is not None
    stale = utcnow() - timedelta(seconds=2 * runtime.settings.tick_every + 1)
    with runtime.session() as session:
        session.execute(update(SchedulerState).values(last_tick_at=stale))
    body = client.get("/healthz").json()
    assert (body["status"], body["scheduler"]) == ("ok", "not running")
    assert body["last_tick"] == stale.isoformat()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # plain HTTP: one database is enough
def test_healthz_without_database(settings: Settings) -> None:
    """Scenario: the database is unreachable; /healthz says 503, not a traceback."""
    broken = replace(settings, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    with TestClient(create_app(broken)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # plain HTTP: one database is enough
def test_security_headers_everywhere(client: TestClient) -> None:
    """Scenario: pages, errors and the stylesheet all carry the security headers."""
    for path in ("/healthz", "/static/site.css", "/no/such/page"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "http" not in csp  # no third-party origin is allowed anywhere
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
        assert headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # plain HTTP: one database is enough
def test_no_hsts_on_plain_http(settings: Settings) -> None:
    """Scenario: a local http base URL gets no HSTS (it would lock the host out of http)."""
    local = replace(settings, base_url="http://127.0.0.1:8000")
    with TestClient(create_app(local)) as client:
        headers = client.get("/healthz").headers
    assert "strict-transport-security" not in headers
    assert headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # plain HTTP: one database is enough
def test_unknown_page_is_a_404_page(client: TestClient) -> None:
    """Scenario: an unknown address gets an HTML 404 page."""
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<html lang=" in response.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # plain HTTP: one database is enough
def test_api_errors_are_json(client: TestClient) -> None:
    """Scenario: an unknown API address gets a JSON error, not a page."""
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert "detail" in response.json()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # plain HTTP: one database is enough
def test_stylesheet_is_served(client: TestClient) -> None:
    """Scenario: the only stylesheet comes from the app itself."""
    response = client.get("/static/site.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "@import" not in response.text and "url(http" not in response.text


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "be"),
        ("", "be"),
        ("ru-RU,ru;q=0.9,en;q=0.8", "ru"),
        ("en-GB,en;q=0.9", "en"),
        ("de-DE,de;q=0.9,en;q=0.5,ru;q=0.7", "ru"),
        ("fr, *;q=0.1", "be"),
        ("be;q=0.2, en;q=0.8", "en"),
        ("ru;q=bad, en;q=0.1", "en"),
    ],
)
def test_negotiate_language(header: str | None, expected: str) -> None:
    """Scenario: Accept-Language picks the best of be/ru/en, defaulting to be."""
    assert negotiate(header) == expected

"""Property-based fuzzing of the public form routes: any form fields, any tokens: a page
with a status under 500, never a traceback, and no change unless the answer says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from newsletter.config import Settings
from newsletter.jobs import InProcessJobs
from newsletter.models import Event, Subscriber
from newsletter.runtime import Runtime
from newsletter.web.app import create_app
from newsletter.web.ratelimit import Limit

FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
field_text = st.text(max_size=60) | st.sampled_from(
    [
        "a@example.org",
        "ＶＩＣＴＩＭ@example.org",
        "x@example。org",
        "be",
        "ru",
        "en",
        "\x00",
        "a" * 400,
    ]
)
langs = st.sampled_from(["be", "ru", "en", "de", "", "../x", "%00"])
# Any text, percent-encoded: the route receives NUL, controls, slashes, look-alikes.
tokens = (st.text(max_size=80) | st.sampled_from(["", "..", "%", "AAAA" * 20])).map(
    lambda text: quote(text, safe="")
)


@pytest.fixture
def held(settings: Settings, engine: Engine) -> Iterator[tuple[TestClient, Runtime]]:
    """The app with generous limits (the fuzzer is one client) and jobs held, not run."""
    runtime = Runtime(settings, _engine=engine, _jobs=InProcessJobs(lambda name, kwargs: None))
    app: FastAPI = create_app(settings, runtime=runtime)
    app.state.subscribe_limits.per_ip = Limit(10**6, 3600)
    app.state.subscribe_limits.per_address = Limit(10**6, 3600)
    with TestClient(app, base_url="https://news.example.org", follow_redirects=False) as client:
        yield client, runtime


def _counts(runtime: Runtime) -> tuple[int, int]:
    with runtime.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Subscriber)) or 0,
            session.scalar(select(func.count()).select_from(Event)) or 0,
        )


def _sound(response: Any) -> None:
    assert response.status_code < 500, response.text[:300]
    assert "Traceback" not in response.text


@FUZZ
@given(
    lang=langs,
    email=field_text,
    name=field_text,
    languages=st.lists(langs | field_text, max_size=4),
    first=langs | field_text,
    website=st.sampled_from(["", "", "http://spam.example"]),
)
@example(
    lang="en", email="a\x00@example.org", name="A\x00", languages=["en"], first="en", website=""
)
@example(
    lang="en", email="ＶＩＣＴＩＭ@example.org", name="", languages=["x"], first="", website=""
)
def test_subscribe_form(
    held: tuple[TestClient, Runtime],
    lang: str,
    email: str,
    name: str,
    languages: list[str],
    first: str,
    website: str,
) -> None:
    """Scenario: any fields posted to the form: a 2xx or 4xx page; a refusal writes nothing."""
    client, runtime = held
    before = _counts(runtime)
    data = {
        "email": email,
        "name": name,
        "languages": languages,
        "first": first,
        "website": website,
    }
    response = client.post(f"/{lang}/subscribe", data=data)
    _sound(response)
    if response.status_code != 200 or website:
        assert _counts(runtime) == before


@FUZZ
@given(
    token=tokens,
    action=st.sampled_from(["", "/preferences", "/export", "/erase"]),
    method=st.sampled_from(["GET", "POST"]),
    fields=st.dictionaries(
        st.sampled_from(["languages", "first", "confirm", "List-Unsubscribe"]),
        field_text,
        max_size=3,
    ),
)
def test_token_routes(
    held: tuple[TestClient, Runtime], token: str, action: str, method: str, fields: dict[str, str]
) -> None:
    """Scenario: forged or malformed tokens on every link route: a clear 4xx, nothing changed."""
    client, runtime = held
    before = _counts(runtime)
    for base in ("/confirm/", "/unsubscribe/"):
        path = base + token + (action if base == "/unsubscribe/" else "")
        response = client.request(method, path, data=fields if method == "POST" else None)
        _sound(response)
    assert _counts(runtime) == before

"""Web fixtures: the app built from the test's settings and an HTTP client against it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from newsletter.runtime import Runtime
from newsletter.web.app import create_app


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime.settings, runtime=runtime)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """httpx through the ASGI app; redirects are not followed, so tests see them."""
    with TestClient(app, base_url="https://news.example.org", follow_redirects=False) as c:
        yield c

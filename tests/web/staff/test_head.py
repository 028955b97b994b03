"""HEAD on every GET route: the same status and headers as GET, and no body."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import update

from newsletter import subscriptions
from newsletter.models import Edition, EditionStatus, EventSource
from newsletter.runtime import Runtime
from newsletter.tokens import TokenPurpose, TokenSigner


def get_routes(app: FastAPI) -> list[str]:
    """Every path template the app answers GET on (public, staff, API, health, static)."""
    paths = []
    for route in iter_route_contexts(app.routes):
        if "GET" in (getattr(route, "methods", None) or ()):
            paths.append(route.path)
    return paths


def test_head_on_every_get_route(
    app: FastAPI,
    admin_client: TestClient,
    tokens: dict[str, str],
    runtime: Runtime,
    signer: TokenSigner,
    edition,  # type: ignore[no-untyped-def]
) -> None:
    """Scenario: a link checker sends HEAD to every page: each answers as GET would (never
    405), with the same headers and no body."""
    with runtime.session() as s:
        s.execute(update(Edition).values(status=EditionStatus.sent))
        reader = subscriptions.add_subscriber(
            s, runtime.settings.secret_key, "reader@example.org", "en", source=EventSource.staff
        )
        s.flush()
        reader_id = reader.id
    values = {
        "lang": "en",
        "week": edition.week,
        "slug": edition.slugs[0],
        "name": "admin.css",
        "subscriber_id": str(reader_id),
    }
    tokens_by_route = {
        "/confirm/{token}": signer.make(TokenPurpose.confirm, reader_id),
        "/unsubscribe/{token}": signer.make(TokenPurpose.unsubscribe, reader_id, edition.id),
    }
    auth = {"Authorization": f"Bearer {tokens['ada']}"}
    templates = get_routes(app)
    assert {"/{lang}/archive/{week}", "/{lang}/", "/admin/editions", "/api/editions"} <= set(
        templates
    )
    for template in templates:
        path = re.sub(r"{(\w+)}", lambda m: values.get(m[1], ""), template)
        if "{token}" in template:
            path = template.replace("{token}", tokens_by_route[template])
        headers = auth if template.startswith("/api/") else {}
        got = admin_client.get(path, headers=headers)
        head = admin_client.head(path, headers=headers)
        assert got.status_code != 405, template
        assert head.status_code == got.status_code, template
        assert head.content == b"", template
        for name in ("content-type", "cache-control", "etag", "location"):
            assert head.headers.get(name) == got.headers.get(name), (template, name)
    # Not a GET route: HEAD is refused as GET would be.
    assert admin_client.head("/en/subscribe").status_code == 405

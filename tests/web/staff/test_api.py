"""The JSON API: bearer tokens, roles, editions and articles, subscribers, statistics."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from newsletter.models import Subscriber, SubscriberStatus
from newsletter.paths import sample_data_dir
from newsletter.runtime import Runtime


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_needs_a_valid_token(client: TestClient, tokens: dict[str, str]) -> None:
    """No token, a wrong one or another scheme: 401 JSON with a Bearer challenge."""
    for headers in ({}, bearer("not-a-token"), {"Authorization": "Basic YWRhOnB3"}, bearer("")):
        response = client.get("/api/editions", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert isinstance(response.json()["detail"], str)
    assert client.get("/api/editions", headers=bearer(tokens["erin"])).status_code == 200


def test_editor_token_cannot_reach_subscribers(client: TestClient, tokens: dict[str, str]) -> None:
    """An editor's token gets 403 on every subscriber route; an admin's token gets in."""
    editor, admin = bearer(tokens["erin"]), bearer(tokens["ada"])
    calls = [
        ("GET", "/api/subscribers", None),
        ("GET", "/api/subscribers/1", None),
        ("POST", "/api/subscribers", {"email": "x@example.org", "languages": ["be"]}),
        ("POST", "/api/subscribers/1/unsubscribe", None),
    ]
    for method, path, body in calls:
        response = client.request(method, path, headers=editor, json=body)
        assert response.status_code == 403, path
        assert response.json() == {"detail": "this needs an admin's API token"}
    assert client.get("/api/subscribers", headers=admin).status_code == 200


def test_revoked_token_stops_working(
    admin_client: TestClient, client: TestClient, tokens: dict[str, str], h: Any
) -> None:
    """A token revoked on the staff page is refused at once."""
    assert client.get("/api/editions", headers=bearer(tokens["erin"])).status_code == 200
    page = admin_client.get("/admin/staff")
    assert "erin&#39;s script" in page.text or "erin's script" in page.text
    ids = [part.split("/")[0] for part in page.text.split('action="/admin/tokens/')[1:]]
    for token_id in ids:
        response = admin_client.post(
            f"/admin/tokens/{token_id}/revoke", data={"csrf_token": h.csrf_of(page.text)}
        )
        assert response.status_code == 303
    assert client.get("/api/editions", headers=bearer(tokens["erin"])).status_code == 401


def test_token_created_on_the_staff_page_is_shown_once(
    admin_client: TestClient, client: TestClient, accounts: dict[str, int], h: Any
) -> None:
    """Creating a token shows it once; it then authenticates as its owner."""
    page = admin_client.get("/admin/staff")
    response = admin_client.post(
        "/admin/tokens",
        data={
            "csrf_token": h.csrf_of(page.text),
            "label": "deploy bot",
            "staff_user_id": str(accounts["erin"]),
        },
    )
    assert response.status_code == 200
    token = response.text.split('<code id="new-token">')[1].split("</code>")[0]
    assert token not in admin_client.get("/admin/staff").text
    assert client.get("/api/editions", headers=bearer(token)).status_code == 200
    assert client.get("/api/subscribers", headers=bearer(token)).status_code == 403  # editor's


def test_editions_and_articles_through_the_api(
    client: TestClient, tokens: dict[str, str], edition: Any
) -> None:
    """List editions with completeness, read articles, rewrite one translation."""
    auth = bearer(tokens["erin"])
    listing = client.get("/api/editions", headers=auth).json()
    assert [e["week"] for e in listing] == ["2020-W05"]
    total = len(edition.slugs)
    assert listing[0]["completeness"]["en"] == {"done": total, "total": total, "missing": []}
    detail = client.get("/api/editions/2020-W05", headers=auth).json()
    assert [a["slug"] for a in detail["items"]] == edition.slugs
    slug = edition.slugs[0]
    put = client.put(
        f"/api/editions/2020-W05/articles/{slug}/en",
        headers=auth,
        json={"title": "Rewritten", "body": "New **body**."},
    )
    assert put.status_code == 200
    article = client.get(f"/api/editions/2020-W05/articles/{slug}", headers=auth).json()
    assert article["translations"]["en"] == {
        "lang": "en",
        "title": "Rewritten",
        "body": "New **body**.",
    }
    articles = client.get("/api/editions/2020-W05/articles", headers=auth).json()
    assert len(articles) == total


def test_api_bad_input_is_a_clear_4xx(
    client: TestClient, tokens: dict[str, str], edition: Any
) -> None:
    """Unknown weeks, slugs and languages, malformed bodies: JSON 4xx, never a 500."""
    auth = bearer(tokens["ada"])
    slug = edition.slugs[0]
    cases = [
        ("GET", "/api/editions/2031-W01", None, 404),
        ("GET", "/api/editions/2020-W99", None, 422),
        ("GET", "/api/editions/20x0-W05", None, 422),
        ("GET", "/api/editions/2020-W05/articles/nope", None, 404),
        ("PUT", f"/api/editions/2020-W05/articles/{slug}/de", {"title": "t", "body": "b"}, 422),
        ("PUT", f"/api/editions/2020-W05/articles/{slug}/en", {"title": "", "body": "b"}, 422),
        ("PUT", f"/api/editions/2020-W05/articles/{slug}/en", {"title": "t\x00", "body": "b"}, 422),
        ("POST", "/api/editions", {"content": "week: [unclosed"}, 422),
        ("POST", "/api/editions", {"nothing": 1}, 422),
        ("GET", "/api/subscribers/999999", None, 404),
        ("GET", "/api/subscribers/99999999999999999999999", None, 422),
        ("GET", "/api/subscribers?q=%00", None, 422),
        ("POST", "/api/subscribers", {"email": "x@example.org", "languages": []}, 422),
        ("POST", "/api/subscribers", {"email": "x@example.org", "languages": ["be", "be"]}, 422),
        ("GET", "/api/statistics?weeks=0", None, 422),
    ]
    for method, path, body, status in cases:
        response = client.request(method, path, headers=auth, json=body)
        assert response.status_code == status, (method, path, response.text)
        assert "detail" in response.json()


def test_import_an_edition_through_the_api(client: TestClient, tokens: dict[str, str]) -> None:
    """POSTing the edition YAML's text imports the week."""
    content = (sample_data_dir() / "2020-W05.yaml").read_text(encoding="utf-8")
    response = client.post(
        "/api/editions", headers=bearer(tokens["erin"]), json={"content": content}
    )
    assert response.status_code == 201, response.text
    assert response.json()["week"] == "2020-W05"
    assert response.json()["articles"] > 0


def test_subscribers_through_the_api(
    client: TestClient, tokens: dict[str, str], runtime: Runtime
) -> None:
    """An admin adds, finds, reads and unsubscribes a subscriber."""
    pytest.importorskip("newsletter.subscriptions")
    auth = bearer(tokens["ada"])
    created = client.post(
        "/api/subscribers",
        headers=auth,
        json={"email": "Reader@Example.org", "languages": ["ru", "en"], "confirmed": True},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["email"], body["languages"], body["status"]) == (
        "reader@example.org",
        ["ru", "en"],
        "active",
    )
    again = client.post(
        "/api/subscribers", headers=auth, json={"email": "reader@example.org", "languages": ["be"]}
    )
    assert again.status_code == 409
    bad = client.post(
        "/api/subscribers", headers=auth, json={"email": "not an address", "languages": ["be"]}
    )
    assert bad.status_code == 422
    found = client.get("/api/subscribers?q=READER", headers=auth).json()
    assert found["total"] == 1 and found["items"][0]["id"] == body["id"]
    assert client.get("/api/subscribers?q=nobody", headers=auth).json()["total"] == 0
    gone = client.post(f"/api/subscribers/{body['id']}/unsubscribe", headers=auth)
    assert gone.status_code == 200 and gone.json()["status"] == "unsubscribed"
    detail = client.get(f"/api/subscribers/{body['id']}", headers=auth).json()
    assert [e["source"] for e in detail["events"]][-1] == "staff"
    with runtime.session() as session:
        stored = session.get(Subscriber, body["id"])
        assert stored is not None and stored.status == SubscriberStatus.unsubscribed


def test_statistics_through_the_api(client: TestClient, tokens: dict[str, str]) -> None:
    """The statistics endpoint answers with every status and language, and N weeks."""
    data = client.get("/api/statistics?weeks=4", headers=bearer(tokens["erin"])).json()
    assert set(data["by_status"]) == {"pending", "active", "unsubscribed", "bounced", "complained"}
    assert set(data["by_language"]) == {"be", "ru", "en"}
    assert len(data["status_over_time"]) == 4
    assert data["editions"] == []


def test_openapi_describes_the_api(client: TestClient) -> None:
    """/openapi.json lists the API's routes with their models and the bearer scheme."""
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/subscribers",
        "/api/subscribers/{subscriber_id}",
        "/api/editions",
        "/api/editions/{week}",
        "/api/editions/{week}/articles/{slug}/{lang}",
        "/api/sends/{week}",
        "/api/sends/{week}/pause",
        "/api/statistics",
    ):
        assert path in paths, path
    assert not any(p.startswith("/admin") for p in paths)
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert "SubscriberCreate" in schema["components"]["schemas"]

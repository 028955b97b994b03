"""Staff login, logout, the session cookie, CSRF and role separation."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from newsletter.web.ratelimit import LoginPolicy

ADMIN_GETS = ["/admin/subscribers", "/admin/subscribers/1", "/admin/staff"]
STAFF_GETS = [
    "/admin/",
    "/admin/editions",
    "/admin/editions/2020-W05",
    "/admin/editions/2020-W05/articles/economy/be",
    "/admin/editions/2020-W05/preview?langs=be",
    "/admin/editions/2020-W05/preview/email?langs=be",
    "/admin/editions/2020-W05/progress",
    "/admin/editions/2020-W05/progress.json",
    "/admin/statistics",
    *ADMIN_GETS,
]
POSTS = [
    "/admin/logout",
    "/admin/editions/2020-W05/articles/economy/be",
    "/admin/editions/2020-W05/test",
    "/admin/editions/2020-W05/send",
    "/admin/editions/2020-W05/schedule",
    "/admin/editions/2020-W05/pause",
    "/admin/editions/2020-W05/resume",
    "/admin/editions/2020-W05/cancel",
    "/admin/editions/2020-W05/retry",
    "/admin/subscribers/1/unsubscribe",
    "/admin/staff",
    "/admin/tokens",
    "/admin/tokens/1/revoke",
]


def test_login_sets_a_hardened_cookie_and_logout_ends_it(
    h: Any, make_client: Callable[[], TestClient], accounts: dict[str, int]
) -> None:
    """A staff member logs in (HttpOnly, SameSite, Secure cookie), works, and logs out."""
    client = make_client()
    page = client.get("/admin/login")
    assert page.status_code == 200
    response = client.post(
        "/admin/login",
        data={
            "name": "erin",
            "password": h.PASSWORD,
            "csrf_token": h.csrf_of(page.text),
            "next": "/admin/statistics",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/statistics"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    assert client.get("/admin/editions").status_code == 200

    out = client.post("/admin/logout", data={"csrf_token": h.form_csrf(client)})
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    again = client.get("/admin/editions")
    assert again.status_code == 303 and again.headers["location"].startswith("/admin/login")


def test_wrong_password_is_refused(
    h: Any, make_client: Callable[[], TestClient], accounts: dict[str, int]
) -> None:
    """A wrong password or unknown name shows the form again with one message, no session."""
    client = make_client()
    for name, password in (("erin", "nope"), ("nobody", h.PASSWORD), ("", "")):
        token = h.csrf_of(client.get("/admin/login").text)
        response = client.post(
            "/admin/login", data={"name": name, "password": password, "csrf_token": token}
        )
        assert response.status_code == 401
        assert "Wrong name or password" in response.text
    assert client.get("/admin/editions").status_code == 303


def test_login_needs_the_csrf_token(
    h: Any, make_client: Callable[[], TestClient], accounts: dict[str, int]
) -> None:
    """A login form posted from elsewhere (no or a foreign CSRF token) is refused."""
    client = make_client()
    client.get("/admin/login")
    for data in ({}, {"csrf_token": "forged"}):
        response = client.post(
            "/admin/login", data={"name": "erin", "password": h.PASSWORD, **data}
        )
        assert response.status_code == 403
    other = make_client()
    foreign = h.csrf_of(other.get("/admin/login").text)
    response = client.post(
        "/admin/login", data={"name": "erin", "password": h.PASSWORD, "csrf_token": foreign}
    )
    assert response.status_code == 403


def test_next_never_leaves_the_staff_area(
    h: Any, make_client: Callable[[], TestClient], accounts: dict[str, int]
) -> None:
    """The login's `next` is not an open redirect."""
    client = make_client()
    token = h.csrf_of(client.get("/admin/login").text)
    response = client.post(
        "/admin/login",
        data={
            "name": "erin",
            "password": h.PASSWORD,
            "csrf_token": token,
            "next": "//evil.example",
        },
    )
    assert response.headers["location"] == "/admin/editions"


def test_anonymous_visitors_are_sent_to_login(
    h: Any, make_client: Callable[[], TestClient]
) -> None:
    """Every staff page redirects an anonymous visitor to the login page."""
    client = make_client()
    for path in STAFF_GETS:
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/admin/login?next="), path


def test_anonymous_posts_change_nothing(h: Any, make_client: Callable[[], TestClient]) -> None:
    """Every staff form refuses an anonymous POST (login page or 403), even with a token."""
    client = make_client()
    token = h.csrf_of(client.get("/admin/login").text)
    for path in POSTS:
        response = client.post(path, data={"csrf_token": token})
        if path == "/admin/logout":
            assert response.status_code == 303
            continue
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/admin/login"), path


def test_posts_without_csrf_are_refused(h: Any, admin_client: TestClient, edition: Any) -> None:
    """A logged-in admin's forms are refused without the session's CSRF token."""
    for path in POSTS:
        for data in ({}, {"csrf_token": "forged"}):
            response = admin_client.post(path, data=data)
            assert response.status_code == 403, path
    # ...and the session survived: nothing was logged out.
    assert admin_client.get("/admin/editions").status_code == 200


def test_editor_cannot_open_admin_pages(h: Any, editor_client: TestClient) -> None:
    """An editor gets 403 on subscribers, staff and tokens; an admin's pages stay closed."""
    token = h.form_csrf(editor_client)
    for path in ADMIN_GETS:
        assert editor_client.get(path).status_code == 403, path
    for path in ("/admin/staff", "/admin/tokens", "/admin/subscribers/1/unsubscribe"):
        response = editor_client.post(path, data={"csrf_token": token, "label": "x", "name": "x"})
        assert response.status_code == 403, path
    assert "Subscribers" not in editor_client.get("/admin/editions").text


def test_admin_opens_admin_pages(h: Any, admin_client: TestClient) -> None:
    """An admin sees the subscriber search and the staff page."""
    for path in ("/admin/subscribers", "/admin/staff"):
        assert admin_client.get(path).status_code == 200, path


def test_a_tampered_cookie_is_anonymous(h: Any, admin_client: TestClient) -> None:
    """A session cookie that was altered is not a session."""
    assert admin_client.get("/admin/editions").status_code == 200
    value = admin_client.cookies.get("newsletter_staff")
    assert value
    admin_client.cookies.clear()
    admin_client.cookies.set(
        "newsletter_staff", value[:-2] + "xx", domain="news.example.org", path="/admin"
    )
    assert admin_client.get("/admin/editions").status_code == 303


def browser_at(app: FastAPI, ip: str) -> TestClient:
    """A browser whose requests come from `ip`."""
    return TestClient(
        app, base_url="https://news.example.org", follow_redirects=False, client=(ip, 1)
    )


def test_password_guessing_slows_that_source_down(
    h: Any, app: FastAPI, accounts: dict[str, int]
) -> None:
    """Five wrong passwords from one address: it waits (even with the right one); others don't."""
    # 3 s: long enough for a loaded machine to answer the next request inside the wait.
    app.state.login_throttle.policy = LoginPolicy(first_wait=3.0)
    attacker = browser_at(app, "203.0.113.9")
    token = h.csrf_of(attacker.get("/admin/login").text)
    wrong = {"name": "erin", "password": "wrong password", "csrf_token": token}
    assert [attacker.post("/admin/login", data=wrong).status_code for _ in range(5)] == [401] * 5
    response = attacker.post("/admin/login", data={**wrong, "password": h.PASSWORD})
    assert response.status_code == 429
    wait = int(response.headers["retry-after"])
    assert 1 <= wait <= 3
    assert f"Wait {wait} seconds" in response.text
    assert attacker.get("/admin/editions").status_code == 303
    # The staff member, from their own address, is not locked out.
    h.log_in(
        browser_at(app, "198.51.100.2"),
        "erin",
    )
    # Slowed down, not locked: after the wait the attacker's address may try again.
    time.sleep(wait + 0.1)
    assert attacker.post("/admin/login", data=wrong).status_code == 401
    assert attacker.post("/admin/login", data=wrong).status_code == 429  # and now waits 6 s


def test_guessing_from_many_addresses_locks_nobody_out(
    h: Any, app: FastAPI, accounts: dict[str, int]
) -> None:
    """A stranger guessing from 20 addresses (120 tries): the staff member still logs in at once."""
    for i in range(20):
        stranger = browser_at(app, f"2001:db8:{i:x}::1")
        token = h.csrf_of(stranger.get("/admin/login").text)
        for _ in range(6):
            stranger.post("/admin/login", data={"name": "ada", "password": "", "csrf_token": token})
    h.log_in(
        browser_at(app, "198.51.100.3"),
        "ada",
    )


def test_odd_login_names_are_a_plain_refusal(
    h: Any, make_client: Callable[[], TestClient], accounts: dict[str, int]
) -> None:
    """A NUL byte or look-alike letters in the name: 401 like any wrong name, never a 500."""
    client = make_client()
    for name in ("erin\x00", "ｅｒｉｎ", "erin' OR '1'='1", "e" * 64):
        token = h.csrf_of(client.get("/admin/login").text)
        response = client.post(
            "/admin/login", data={"name": name, "password": h.PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 401, name

"""Staff sessions end on the server: logout, new password, disable, role change, idle time;
a disabled account's API tokens stop working; account management in the staff area."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from newsletter.models import ApiToken, StaffLogin, StaffUser, utcnow
from newsletter.runtime import Runtime


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def copy_of(client: TestClient, make_client: Callable[[], TestClient]) -> TestClient:
    """A second browser holding a copy of the first one's cookie (a stolen cookie)."""
    thief = make_client()
    thief.cookies.set(
        "newsletter_staff",
        client.cookies["newsletter_staff"],
        domain="news.example.org",
        path="/admin",
    )
    return thief


def opens_staff_area(client: TestClient) -> bool:
    response = client.get("/admin/editions")
    assert response.status_code in (200, 303)
    return response.status_code == 200


def test_logout_ends_the_session_on_the_server(
    h: Any, make_client: Callable[[], TestClient], accounts: dict[str, int], runtime: Runtime
) -> None:
    """After logout a copy of the old cookie opens nothing and cannot make an API token."""
    browser = h.log_in(make_client(), "ada")
    thief = copy_of(browser, make_client)
    csrf = h.form_csrf(thief, "/admin/staff")
    assert opens_staff_area(thief)
    browser.post("/admin/logout", data={"csrf_token": h.form_csrf(browser)})
    assert not opens_staff_area(thief)
    response = thief.post("/admin/tokens", data={"csrf_token": csrf, "label": "stolen"})
    assert response.status_code == 303 and response.headers["location"].startswith("/admin/login")
    with runtime.session() as session:
        assert session.scalars(select(ApiToken)).all() == []
        assert session.scalars(select(StaffLogin)).all() == []


def test_password_change_ends_every_session_of_that_account(
    h: Any,
    make_client: Callable[[], TestClient],
    admin_client: TestClient,
    accounts: dict[str, int],
) -> None:
    """An admin sets erin's password: erin's two browsers are logged out, ada's is not."""
    first, second = h.log_in(make_client(), "erin"), h.log_in(make_client(), "erin")
    page = admin_client.get("/admin/staff")
    response = admin_client.post(
        f"/admin/staff/{accounts['erin']}/password",
        data={"csrf_token": h.csrf_of(page.text), "password": "a brand new passphrase"},
    )
    assert response.status_code == 303
    assert not opens_staff_area(first) and not opens_staff_area(second)
    assert opens_staff_area(admin_client)
    h.log_in(make_client(), "erin", "a brand new passphrase")
    short = admin_client.post(
        f"/admin/staff/{accounts['erin']}/password",
        data={"csrf_token": h.csrf_of(page.text), "password": "short"},
    )
    assert short.status_code == 422 and "at least 8" in short.text


def test_disabling_ends_sessions_and_api_tokens(
    h: Any,
    make_client: Callable[[], TestClient],
    admin_client: TestClient,
    client: TestClient,
    tokens: dict[str, str],
    accounts: dict[str, int],
) -> None:
    """A disabled editor: session over, login refused, token refused; enabled: token works."""
    browser = h.log_in(make_client(), "erin")
    csrf = h.csrf_of(admin_client.get("/admin/staff").text)
    disabled = admin_client.post(
        f"/admin/staff/{accounts['erin']}/disable", data={"csrf_token": csrf}
    )
    assert disabled.status_code == 303
    assert "disabled" in admin_client.get("/admin/staff").text
    assert not opens_staff_area(browser)
    assert client.get("/api/editions", headers=bearer(tokens["erin"])).status_code == 401
    again = make_client()
    token = h.csrf_of(again.get("/admin/login").text)
    refused = again.post(
        "/admin/login", data={"name": "erin", "password": h.PASSWORD, "csrf_token": token}
    )
    assert refused.status_code == 401
    admin_client.post(f"/admin/staff/{accounts['erin']}/enable", data={"csrf_token": csrf})
    assert client.get("/api/editions", headers=bearer(tokens["erin"])).status_code == 200
    h.log_in(make_client(), "erin")


def test_role_change_ends_sessions(
    h: Any,
    make_client: Callable[[], TestClient],
    admin_client: TestClient,
    accounts: dict[str, int],
) -> None:
    """Erin made admin: her editor session ends, and she logs in again as an admin."""
    browser = h.log_in(make_client(), "erin")
    csrf = h.csrf_of(admin_client.get("/admin/staff").text)
    response = admin_client.post(
        f"/admin/staff/{accounts['erin']}/role", data={"csrf_token": csrf, "role": "admin"}
    )
    assert response.status_code == 303
    assert not opens_staff_area(browser)
    assert h.log_in(make_client(), "erin").get("/admin/subscribers").status_code == 200


def test_last_admin_cannot_be_disabled_or_demoted(
    h: Any, admin_client: TestClient, accounts: dict[str, int]
) -> None:
    """The only admin cannot lock everyone out of account management."""
    csrf = h.csrf_of(admin_client.get("/admin/staff").text)
    for action, data in (("disable", {}), ("role", {"role": "editor"})):
        response = admin_client.post(
            f"/admin/staff/{accounts['ada']}/{action}", data={"csrf_token": csrf, **data}
        )
        assert response.status_code == 409, action
        assert "last enabled admin" in response.text
    assert opens_staff_area(admin_client)


def test_account_changes_need_an_admin_and_the_csrf_token(
    h: Any, editor_client: TestClient, admin_client: TestClient, accounts: dict[str, int]
) -> None:
    """An editor cannot change accounts; a form without the CSRF token changes nothing."""
    csrf = h.form_csrf(editor_client)
    for action in ("disable", "password", "role"):
        url = f"/admin/staff/{accounts['ada']}/{action}"
        data = {"csrf_token": csrf, "password": "x" * 20, "role": "editor"}
        assert editor_client.post(url, data=data).status_code == 403
        assert admin_client.post(url, data={"password": "x" * 20}).status_code == 403
    assert (
        admin_client.post(
            "/admin/staff/999999/disable", data={"csrf_token": h.form_csrf(admin_client)}
        ).status_code
        == 404
    )
    assert opens_staff_area(editor_client)


def test_idle_sessions_expire(
    h: Any, make_client: Callable[[], TestClient], runtime: Runtime, accounts: dict[str, int]
) -> None:
    """A session unused for longer than the idle time is over, even with a valid cookie."""
    from newsletter.staff import LOGIN_IDLE

    browser = h.log_in(make_client(), "erin")
    assert opens_staff_area(browser)
    with runtime.session() as session:
        session.execute(
            update(StaffLogin).values(last_seen_at=utcnow() - LOGIN_IDLE - timedelta(minutes=1))
        )
    assert not opens_staff_area(browser)


def test_staff_commands(cli, runtime: Runtime, accounts: dict[str, int], h: Any) -> None:  # type: ignore[no-untyped-def]
    """`newsletter staff list|passwd|disable|enable|role` through the real entry point."""
    with runtime.session() as session:
        from newsletter import staff

        login = staff.start_login(session, session.get_one(StaffUser, accounts["erin"]))

    def logged_in() -> bool:
        with runtime.session() as session:
            from newsletter import staff

            return staff.login_user(session, login) is not None

    listed = cli("staff", "list")
    assert listed.returncode == 0, listed.stderr
    assert [line.split("\t")[:3] for line in listed.stdout.splitlines()] == [
        ["ada", "admin", "enabled"],
        ["erin", "editor", "enabled"],
    ]
    assert logged_in()
    changed = cli("staff", "passwd", "erin", input="another good passphrase\n")
    assert changed.returncode == 0, changed.stderr
    assert "sessions have ended" in changed.stdout and not logged_in()
    assert cli("staff", "disable", "erin").returncode == 0
    assert "erin\teditor\tdisabled" in cli("staff", "list").stdout
    assert cli("staff", "enable", "erin").returncode == 0
    assert cli("staff", "role", "erin", "admin").stdout.startswith("erin is now admin")
    for args, message in (
        (("staff", "disable", "nobody"), "no staff user named 'nobody'"),
        (("staff", "role", "ada", "owner"), "'owner' is not one of"),
        (("staff", "passwd", "nobody"), "no staff user named 'nobody'"),
    ):
        result = cli(*args, input="another good passphrase\n")
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert message in result.stderr, result.stderr
    short = cli("staff", "passwd", "ada", input="short\n")
    assert short.returncode == 1 and short.stderr.strip() == (
        "error: the password must have at least 8 characters"
    )
    assert cli("staff", "disable", "ada").returncode == 0  # erin is an admin now
    last = cli("staff", "disable", "erin")
    assert last.returncode == 1 and "last enabled admin" in last.stderr

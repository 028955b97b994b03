"""Login and logout of the staff area."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Request
from starlette.responses import Response

from newsletter.web.admin.deps import CsrfDep, SessionDep
from newsletter.web.admin.routing import AdminRoute, redirect, render, settings_of
from newsletter.web.admin.session import new_session, read_session, replace_session
from newsletter.web.ratelimit import LoginPolicy, LoginThrottle, client_key, shared_counts

router = APIRouter(route_class=AdminRoute)


def setup(app: FastAPI) -> None:
    """The login throttle, over the counts every web process shares."""
    settings = app.state.runtime.settings
    app.state.login_throttle = LoginThrottle(
        shared_counts(app.state), settings.secret_key, LoginPolicy()
    )


def safe_next(target: str | None) -> str:
    """Only a path inside the staff area: never an open redirect to another site."""
    if (
        target
        and target.startswith("/admin")
        and not any(c in target for c in ("\\", "\n", "\r"))
        and not target.startswith("//")
    ):
        return target
    return "/admin/editions"


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    read_session(request, settings_of(request))  # an anonymous session carries the CSRF token
    return render(request, "admin/login.html", {"next": safe_next(next), "failed": False})


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    _csrf: CsrfDep,
    name: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str | None, Form()] = None,
) -> Response:
    from newsletter import staff as staff_accounts

    throttle: LoginThrottle = request.app.state.login_throttle
    source = client_key(request.client.host if request.client else None)
    wait = throttle.wait(name, source)
    if wait > 0:
        # Slowed down, never locked: this source waits; the account works from elsewhere.
        seconds = math.ceil(wait)
        page = render(
            request,
            "admin/login.html",
            {"next": safe_next(next), "failed": False, "wait": seconds, "name": name},
            status_code=429,
        )
        page.headers["Retry-After"] = str(seconds)
        return page
    # An empty field never matches (passwords have 8+ characters): no hashing for it.
    user = (
        staff_accounts.authenticate(session, name.strip(), password) if name and password else None
    )
    if user is None:
        throttle.failed(name, source)
        return render(
            request,
            "admin/login.html",
            {"next": safe_next(next), "failed": True, "name": name},
            status_code=401,
        )
    throttle.succeeded(name, source)
    # A new session (and CSRF token) at login: a token planted before login is worthless.
    replace_session(request, new_session(staff_accounts.start_login(session, user)))
    return redirect(request, safe_next(next))


@router.post("/logout")
def logout(request: Request, session: SessionDep, _csrf: CsrfDep) -> Response:
    """End the login on the server: the old cookie opens nothing, wherever it was copied."""
    from newsletter import staff as staff_accounts

    login = read_session(request, settings_of(request)).login
    if login:
        staff_accounts.end_login(session, login)
    replace_session(request, new_session())
    return redirect(request, "/admin/login")

"""Login and logout of the staff area."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Request
from starlette.responses import Response

from newsletter.web.admin.deps import CsrfDep, SessionDep
from newsletter.web.admin.routing import AdminRoute, redirect, render, settings_of
from newsletter.web.admin.session import (
    new_session,
    password_fingerprint,
    read_session,
    replace_session,
)
from newsletter.web.ratelimit import Limit, limiter_key, make_rate_limiter

router = APIRouter(route_class=AdminRoute)

# Password guessing: attempts per client address and per account name, in any 15 minutes.
LOGIN_PER_IP = Limit(30, 900)
LOGIN_PER_NAME = Limit(10, 900)


def setup(app: FastAPI) -> None:
    """The login limiter: in Redis when a broker is configured (shared by every process)."""
    app.state.login_limiter = make_rate_limiter(app.state.runtime.settings.broker_url)


def _allowed(request: Request, name: str) -> bool:
    limiter = getattr(request.app.state, "login_limiter", None)
    if limiter is None:
        limiter = request.app.state.login_limiter = make_rate_limiter(None)
    secret = settings_of(request).secret_key
    ip = request.client.host if request.client else "unknown"
    return limiter.hit(limiter_key(secret, "login-ip", ip), LOGIN_PER_IP) and limiter.hit(
        limiter_key(secret, "login-name", name.lower()), LOGIN_PER_NAME
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

    if not _allowed(request, name.strip()):
        return render(
            request,
            "admin/login.html",
            {"next": safe_next(next), "failed": False, "throttled": True, "name": name},
            status_code=429,
        )
    # An empty field never matches (passwords have 8+ characters): no hashing for it.
    user = (
        staff_accounts.authenticate(session, name.strip(), password) if name and password else None
    )
    if user is None:
        return render(
            request,
            "admin/login.html",
            {"next": safe_next(next), "failed": True, "name": name},
            status_code=401,
        )
    # A new session (and CSRF token) at login: a token planted before login is worthless.
    replace_session(request, new_session(user.id, password_fingerprint(user.password_hash)))
    return redirect(request, safe_next(next))


@router.post("/logout")
def logout(request: Request, _csrf: CsrfDep) -> Response:
    replace_session(request, new_session())
    return redirect(request, "/admin/login")

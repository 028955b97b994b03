"""The staff session cookie: signed, HttpOnly, holding a CSRF token and, once logged in, the
secret of a login held on the server (newsletter.staff: deleting that row ends the session)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from newsletter.config import Settings

COOKIE_NAME = "newsletter_staff"
# A working day: a stolen cookie is worth little the next morning (the server also ends the
# login after LOGIN_IDLE without a request).
MAX_AGE = timedelta(hours=12)
_SALT = "newsletter.staff-session"


@dataclass
class StaffSession:
    """What the cookie carries: the CSRF token and the login's secret (None: anonymous)."""

    csrf: str
    login: str | None = None
    changed: bool = False


def new_session(login: str | None = None) -> StaffSession:
    return StaffSession(csrf=secrets.token_urlsafe(24), login=login, changed=True)


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALT)


def read_session(request: Request, settings: Settings) -> StaffSession:
    """The request's session, or a fresh anonymous one (to be set on the response)."""
    cached = getattr(request.state, "staff_session", None)
    if isinstance(cached, StaffSession):
        return cached
    session = None
    raw = request.cookies.get(COOKIE_NAME)
    if raw:
        try:
            data = _serializer(settings).loads(raw, max_age=int(MAX_AGE.total_seconds()))
            login = data.get("s")
            session = StaffSession(csrf=str(data["c"]), login=str(login) if login else None)
        except (BadSignature, KeyError, TypeError, ValueError, AttributeError):
            session = None
    if session is None:
        session = new_session()
    request.state.staff_session = session
    return session


def replace_session(request: Request, session: StaffSession) -> None:
    """Swap the request's session (login, logout): a new CSRF token every time."""
    session.changed = True
    request.state.staff_session = session


def write_session(request: Request, response: Response, settings: Settings) -> None:
    """Set the cookie on the response when the session is new or changed."""
    session = getattr(request.state, "staff_session", None)
    if not isinstance(session, StaffSession) or not session.changed:
        return
    value = _serializer(settings).dumps({"c": session.csrf, "s": session.login})
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=int(MAX_AGE.total_seconds()),
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=settings.base_url.startswith("https://"),
    )


def csrf_matches(session: StaffSession, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf, submitted or "")

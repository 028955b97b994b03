"""The API's route class and bearer-token auth: every error is JSON {"detail": ...}, 4xx."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from newsletter import errors
from newsletter.models import StaffRole, StaffUser
from newsletter.web.deps import SessionDep

log = logging.getLogger(__name__)

# Most specific first.
_DOMAIN_STATUS: tuple[tuple[type[errors.NewsletterError], int], ...] = (
    (errors.NotFound, 404),
    (errors.ValidationError, 422),
    (errors.EditionIncomplete, 409),
    (errors.IllegalTransition, 409),
    (errors.Conflict, 409),
    (errors.SubscriptionError, 409),
    (errors.TokenError, 400),
)


class ApiError(Exception):
    """An API refusal with its status (401 carries the Bearer challenge)."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def _json(status_code: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


class ApiRoute(APIRoute):
    """Maps domain errors, validation errors and refusals to JSON, whatever the app does."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
                return _json(exc.status_code, exc.detail, headers)
            except errors.NewsletterError as exc:
                for cls, status_code in _DOMAIN_STATUS:
                    if isinstance(exc, cls):
                        return _json(status_code, str(exc))
                log.error("API request failed: %s", exc)
                return _json(503, str(exc))
            except RequestValidationError as exc:
                return _json(
                    422,
                    [
                        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))}
                        for e in exc.errors()
                    ],
                )
            except StarletteHTTPException as exc:
                return _json(exc.status_code, exc.detail, dict(exc.headers or {}) or None)

        return route_handler


bearer = HTTPBearer(auto_error=False, description="An API token created by an admin")


def api_staff(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> StaffUser:
    """The staff member whose bearer token signs the request; 401 without a valid one."""
    from newsletter import staff as staff_accounts

    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "an API token is required: Authorization: Bearer <token>")
    token = credentials.credentials.strip()
    user = None
    if token and len(token) <= 200 and token.isascii():
        user = staff_accounts.staff_for_api_token(session, token)
    if user is None:
        raise ApiError(401, "the API token is not valid (revoked or mistyped)")
    return user


def api_admin(user: Annotated[StaffUser, Depends(api_staff)]) -> StaffUser:
    if user.role != StaffRole.admin:
        raise ApiError(403, "this needs an admin's API token")
    return user


ApiStaff = Annotated[StaffUser, Depends(api_staff)]
ApiAdmin = Annotated[StaffUser, Depends(api_admin)]


def utc(moment: datetime | None) -> datetime | None:
    """Every time in UTC (SQLite hands back naive datetimes, which are UTC)."""
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)

"""The staff area's route class and page rendering: its errors are English admin pages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from newsletter import errors, scheduler
from newsletter.config import Settings
from newsletter.languages import LANGUAGES
from newsletter.models import utcnow
from newsletter.paths import templates_dir
from newsletter.web.admin.session import read_session, write_session

log = logging.getLogger(__name__)

templates = Jinja2Templates(directory=str(templates_dir() / "web"))
templates.env.globals["LANGUAGES"] = LANGUAGES


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """A moment as staff read it: local date and time, the zone's name and its UTC offset."""
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    offset = local.strftime("%z") or "+0000"
    return f"{local:%Y-%m-%d %H:%M} {zone.key} (UTC{offset[:3]}:{offset[3:]})"


@pass_context
def _local_filter(context: Mapping[str, Any], moment: datetime | None) -> str:
    if moment is None:
        return ""
    return local_time(moment, settings_of(context["request"]).tz)


templates.env.filters["local"] = _local_filter


class LoginRequired(Exception):
    """No staff session: the visitor is sent to the login page."""


class Forbidden(Exception):
    """A logged-in editor asked for an admin-only page, or a form lost its CSRF token."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Domain errors shown to staff: status and heading. Most specific first.
_DOMAIN_STATUS: tuple[tuple[type[errors.NewsletterError], int, str], ...] = (
    (errors.NotFound, 404, "Not found"),
    (errors.ValidationError, 422, "Please check what you entered"),
    (errors.EditionIncomplete, 409, "The edition is incomplete"),
    (errors.IllegalTransition, 409, "This cannot be done now"),
    (errors.Conflict, 409, "This conflicts with what exists"),
    (errors.SubscriptionError, 409, "This cannot be done"),
    (errors.TokenError, 400, "Invalid token"),
)


def settings_of(request: Request) -> Settings:
    return request.app.state.runtime.settings  # type: ignore[no-any-return]


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    """An admin page, never cached, with the staff session cookie when it changed."""
    settings = settings_of(request)
    session = read_session(request, settings)
    # `notices` are (kind, text) pairs the base template shows above every page's content.
    full: dict[str, Any] = {
        "csrf_token": session.csrf,
        "staff": getattr(request.state, "staff", None),
        "notices": [],
    }
    full.update(context or {})
    if full["staff"] is not None:
        full["notices"] = [*full.get("notices", []), *_scheduler_notice(request)]
    response = templates.TemplateResponse(
        request, name, full, status_code=status_code, headers={"Cache-Control": "no-store"}
    )
    write_session(request, response, settings)
    return response


def _scheduler_notice(request: Request) -> list[tuple[str, str]]:
    """The warning every staff page shows while no scheduler tick runs."""
    runtime = request.app.state.runtime
    try:
        with runtime.session() as db:
            ticks = scheduler.health(db, utcnow(), runtime.settings.tick_every)
    except Exception:  # the page itself says what is wrong with the database
        log.warning("staff page: could not read the scheduler's state", exc_info=True)
        return []
    if ticks.running:
        return []
    since = (
        f"since {ticks.last_tick_at:%Y-%m-%d %H:%M} UTC" if ticks.last_tick_at else "has ever run"
    )
    return [
        (
            "warning",
            f"The scheduler is not running: no tick {since}, so scheduled sends and the "
            "weekly send wait. Run `newsletter serve` without a broker, or `newsletter beat`.",
        )
    ]


def redirect(request: Request, url: str) -> Response:
    """303 after a POST (or to the login page), keeping the session cookie if it changed."""
    response = RedirectResponse(url, status_code=303)
    write_session(request, response, settings_of(request))
    return response


def error_page(request: Request, status_code: int, title: str, message: str) -> Response:
    return render(
        request,
        "admin/error.html",
        {"title": title, "message": message, "status_code": status_code},
        status_code=status_code,
    )


def _domain_error(request: Request, exc: errors.NewsletterError) -> Response:
    for cls, status_code, title in _DOMAIN_STATUS:
        if isinstance(exc, cls):
            return error_page(request, status_code, title, str(exc))
    log.error("staff request failed: %s", exc)
    return error_page(request, 503, "Something went wrong", str(exc))


class AdminRoute(APIRoute):
    """Turns the staff area's errors into admin pages whatever the app's own handlers do."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                target = request.url.path
                if request.method == "GET" and request.url.query:
                    target += "?" + request.url.query
                return redirect(request, "/admin/login?next=" + quote(target, safe="/"))
            except Forbidden as exc:
                return error_page(request, 403, "Not allowed", exc.message)
            except errors.NewsletterError as exc:
                return _domain_error(request, exc)
            except RequestValidationError as exc:
                fields = ", ".join(
                    str(e.get("loc", ("?",))[-1]) for e in exc.errors() if e.get("loc")
                )
                return error_page(
                    request, 422, "Please check what you entered", f"Missing or bad: {fields}"
                )
            except StarletteHTTPException as exc:
                detail = exc.detail if isinstance(exc.detail, str) else "Request refused"
                return error_page(request, exc.status_code, "Request refused", detail)

        return route_handler

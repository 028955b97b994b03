"""Domain errors and HTTP errors become clear 4xx pages (in the page's language) or JSON."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from newsletter import errors
from newsletter.web.lang import request_language
from newsletter.web.pages import render

log = logging.getLogger(__name__)


def N_(message: str) -> str:  # gettext: mark now, translate at render
    return message


# Most specific first: the first matching class decides the status and the page's wording.
DOMAIN_ERRORS: tuple[tuple[type[errors.NewsletterError], int, str, str], ...] = (
    (
        errors.TokenExpired,
        410,
        N_("This link has expired"),
        N_("Links in our emails work for a limited time. Subscribe again to get a new one."),
    ),
    (
        errors.TokenRevoked,
        410,
        N_("This link is no longer valid"),
        N_(
            "The subscription it was made for has been erased or started afresh since. "
            "Nothing has been changed."
        ),
    ),
    (
        errors.TokenForTest,
        200,
        N_("This link came from a test email"),
        N_(
            "The test email was sent to staff to check the edition. Its links belong to no "
            "subscription, so nothing has been changed."
        ),
    ),
    (
        errors.TokenError,
        400,
        N_("This link is not valid"),
        N_("The link may be incomplete or altered. Copy the whole link from the email."),
    ),
    (
        errors.ImportFileError,
        422,
        N_("Please check what you entered"),
        N_("Some of the data could not be accepted."),
    ),
    (
        errors.ValidationError,
        422,
        N_("Please check what you entered"),
        N_("Some of the data could not be accepted."),
    ),
    (
        errors.NotFound,
        404,
        N_("Page not found"),
        N_("There is nothing at this address."),
    ),
    (
        errors.NewsletterError,
        409,
        N_("This cannot be done"),
        N_("The request conflicts with the current state of your subscription."),
    ),
)

HTTP_WORDING: dict[int, tuple[str, str]] = {
    404: (N_("Page not found"), N_("There is nothing at this address.")),
    405: (N_("This cannot be done"), N_("This address does not accept this kind of request.")),
    429: (
        N_("Too many attempts"),
        N_("Please wait a while and try again."),
    ),
}
GENERIC = (N_("Something went wrong"), N_("Please try again later."))


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def error_response(
    request: Request, status_code: int, title: str, text: str, detail: str | None = None
) -> Response:
    """The JSON error of the API, or an HTML page in the page's language."""
    if wants_json(request):
        return JSONResponse({"detail": detail or title}, status_code=status_code)
    lang = request_language(request)
    return render(
        request,
        "error.html",
        lang,
        {"status_code": status_code, "title": title, "text": text},
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


def classify(exc: errors.NewsletterError) -> tuple[int, str, str]:
    if isinstance(exc, errors.ConfigError | errors.DeliveryError):
        return 503, *GENERIC  # not the visitor's fault
    for cls, status_code, title, text in DOMAIN_ERRORS:
        if isinstance(exc, cls):
            return status_code, title, text
    return 409, *DOMAIN_ERRORS[-1][2:]


async def on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.NewsletterError)
    status_code, title, text = classify(exc)
    if status_code >= 500:
        log.error("web request failed: %s", exc)
    return error_response(request, status_code, title, text, detail=str(exc))


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    title, text = HTTP_WORDING.get(exc.status_code, GENERIC)
    detail = exc.detail if isinstance(exc.detail, str) else None
    response = error_response(request, exc.status_code, title, text, detail=detail)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def on_request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if wants_json(request):
        return JSONResponse({"detail": jsonable(exc)}, status_code=422)
    return error_response(
        request, 422, N_("Please check what you entered"), N_("Some of the data is missing.")
    )


def jsonable(exc: RequestValidationError) -> list[dict[str, object]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in exc.errors()
    ]


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(request, 500, *GENERIC)


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.NewsletterError, on_domain_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(Exception, on_unexpected)

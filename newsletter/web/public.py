"""The public side: `/` chooses a language; subscriptions and the archive have their modules."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse

from newsletter.tokens import TokenSigner
from newsletter.web import archive, subscriptions
from newsletter.web.background import AfterResponse
from newsletter.web.lang import negotiate
from newsletter.web.ratelimit import RateLimiter, SubscribeLimits, shared_counts

router = APIRouter(include_in_schema=False)


@router.get("/")
def root(request: Request) -> RedirectResponse:
    """Send the visitor to the subscribe page in their language (Accept-Language; else be)."""
    lang = negotiate(request.headers.get("accept-language"))
    return RedirectResponse(f"/{lang}/", status_code=302, headers={"Vary": "Accept-Language"})


router.include_router(subscriptions.router)
router.include_router(archive.router)


def setup(app: FastAPI) -> None:
    """What the public pages keep per app: the token signer, the rate limiter, and the thread
    that sends confirmations after the answer (closed by the app's lifespan)."""
    settings = app.state.settings
    app.state.after_response = AfterResponse()
    app.state.signer = TokenSigner(settings.secret_key)
    app.state.rate_limiter = RateLimiter(shared_counts(app.state), settings.secret_key)
    app.state.subscribe_limits = SubscribeLimits()

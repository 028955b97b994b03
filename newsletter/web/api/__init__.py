"""The JSON API under /api, authenticated by staff bearer tokens, described at /openapi.json.

An editor's token edits and sends; subscribers need an admin's token.
"""

from __future__ import annotations

from fastapi import APIRouter

from newsletter.web.api import bounces, editions, sends, statistics, subscribers

router = APIRouter(
    prefix="/api",
    responses={
        401: {"description": "No valid API token"},
        403: {"description": "The token's owner lacks the role"},
    },
)
for _module in (subscribers, editions, sends, statistics, bounces):
    router.include_router(_module.router)

__all__ = ["router"]

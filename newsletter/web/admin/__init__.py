"""The staff area under /admin: login, editions, sends, subscribers, bounces, statistics, tokens.

The app factory includes `router`; every page but the login page needs a staff session, and
subscribers, staff accounts and API tokens need the admin role.
"""

from __future__ import annotations

from fastapi import APIRouter

from newsletter.web.admin import (
    auth,
    bounces,
    editions,
    imports,
    sends,
    static,
    statistics,
    subscribers,
)
from newsletter.web.admin import staff as staff_pages

router = APIRouter(prefix="/admin", include_in_schema=False)
_MODULES = (auth, static, imports, editions, sends, subscribers, bounces, statistics, staff_pages)
for _module in _MODULES:
    router.include_router(_module.router)

setup = auth.setup  # the app factory calls it when it includes the staff area

__all__ = ["router", "setup"]

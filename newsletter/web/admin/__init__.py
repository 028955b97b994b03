"""The staff area under /admin: login, editions, sends, subscribers, statistics, tokens.

The app factory includes `router`; every page but the login page needs a staff session, and
subscribers, staff accounts and API tokens need the admin role.
"""

from __future__ import annotations

from fastapi import APIRouter

from newsletter.web.admin import auth, editions, imports, sends, static, statistics, subscribers
from newsletter.web.admin import staff as staff_pages

router = APIRouter(prefix="/admin", include_in_schema=False)
for _module in (auth, static, imports, editions, sends, subscribers, statistics, staff_pages):
    router.include_router(_module.router)

setup = auth.setup  # the app factory calls it when it includes the staff area

__all__ = ["router", "setup"]

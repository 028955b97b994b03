"""Request dependencies shared by every router: the runtime, settings and one DB session.

Routers (public, admin, api) declare `session: SessionDep`; the session commits when the
endpoint returns and rolls back when it raises, before the response is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.runtime import Runtime


# async, though they wait for nothing: FastAPI runs a plain `def` dependency in its thread
# pool, one hand-over to a thread and back per dependency per request (about a tenth of a
# millisecond of CPU each, and a turn waiting for the GIL when the process is busy).
async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    return request.app.state.runtime.settings  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: committed if the endpoint returns, else rolled back."""
    with request.app.state.runtime.session() as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": commit (and publish after-commit jobs) before the response goes out, so
# a failed commit is an error page, never a success page for a change that was not saved.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

"""The staff area's own stylesheet and script, served by the app (no third-party assets)."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter
from starlette.responses import Response

from newsletter.paths import templates_dir

router = APIRouter()

FILES = {"admin.css": "text/css", "progress.js": "text/javascript"}


@cache
def _read(name: str) -> bytes:
    return (templates_dir() / "web" / "admin" / "static" / name).read_bytes()


@router.get("/static/{name}", include_in_schema=False)
def static_file(name: str) -> Response:
    if name not in FILES:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(
        _read(name),
        media_type=FILES[name],
        headers={"Cache-Control": "public, max-age=3600"},
    )

"""Staff upload of a week's edition YAML: the CLI's importer, its errors beside their line."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from starlette.responses import Response

from newsletter import errors
from newsletter.edition_lines import error_line
from newsletter.web.admin.deps import CsrfDep, SessionDep, StaffDep
from newsletter.web.admin.routing import AdminRoute, redirect, render

router = APIRouter(route_class=AdminRoute)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def display_name(filename: str | None) -> str:
    """The upload's own name, reduced to safe characters (never a path), for the messages."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _SAFE_NAME.sub("_", base).strip("._")[:100]
    return name or "upload.yaml"


def _page(
    request: Request,
    *,
    status_code: int = 200,
    name: str = "",
    message: str = "",
    lines: list[str] | None = None,
    line: int | None = None,
) -> Response:
    return render(
        request,
        "admin/import.html",
        {"name": name, "message": message, "lines": lines or [], "line": line},
        status_code=status_code,
    )


@router.get("/editions/import")
def import_form(request: Request, staff: StaffDep) -> Response:
    return _page(request)


@router.post("/editions/import")
def import_upload(
    request: Request,
    session: SessionDep,
    staff: StaffDep,
    _csrf: CsrfDep,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Import or update the week the file holds; a refused file is shown with its error."""
    from newsletter.editions import MAX_FILE_BYTES, import_edition

    if file is None or not file.filename:
        return _page(request, status_code=422, message="Choose an edition YAML file to upload.")
    name = display_name(file.filename)
    # One byte past the importer's cap is enough for it to refuse a file as too large (in its
    # own words); the rest of a huge upload stays in Starlette's spool file, never in memory.
    raw = file.file.read(MAX_FILE_BYTES + 1)
    # The importer reads files and names the file in its errors: hand it a private copy
    # under the upload's name, and show its message with that name, not the private path.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(raw)
        try:
            result = import_edition(session, path)
        except (errors.ValidationError, errors.Conflict) as exc:
            message = str(exc).replace(str(path), name)
            # Too large: the message says so, and the file is not shown back.
            text = "" if len(raw) > MAX_FILE_BYTES else raw.decode("utf-8", errors="replace")
            detail = message.removeprefix(f"{name}: ")
            line = error_line(text, detail) if isinstance(exc, errors.ValidationError) else None
            return _page(
                request,
                status_code=409 if isinstance(exc, errors.Conflict) else 422,
                name=name,
                message=message,
                lines=text.splitlines(),
                line=line,
            )
    counts = f"added={len(result.added)}&updated={len(result.updated)}&kept={len(result.kept)}"
    return redirect(request, f"/admin/editions/{result.edition.week}?{counts}")

"""Admin-only pages: what came back (bounces, complaints, auto-replies, mailed unsubscribes),
one message with its raw text, and "reactivate" for a bounce staff judge false."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from newsletter import bounce_reports
from newsletter.models import InboundKind
from newsletter.web.admin.deps import AdminDep, CsrfDep, SessionDep
from newsletter.web.admin.routing import AdminRoute, redirect, render

router = APIRouter(route_class=AdminRoute)
PAGE = 50
InboundId = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/bounces")
def bounce_list(
    request: Request,
    session: SessionDep,
    admin: AdminDep,
    kind: InboundKind | None = None,
    page: int = Query(1, ge=1, le=100_000),
) -> Response:
    rows, total = bounce_reports.list_returned(
        session, kind=kind, limit=PAGE, offset=(page - 1) * PAGE
    )
    return render(
        request,
        "admin/bounces.html",
        {
            "rows": rows,
            "total": total,
            "kind": kind.value if kind else "",
            "kinds": [k.value for k in InboundKind],
            "page": page,
            "pages": max(1, (total + PAGE - 1) // PAGE),
        },
    )


@router.get("/bounces/{inbound_id}")
def bounce_page(
    request: Request, inbound_id: InboundId, session: SessionDep, admin: AdminDep
) -> Response:
    message = bounce_reports.get_returned(session, inbound_id)
    return render(request, "admin/bounce.html", {"m": message})


@router.post("/bounces/{inbound_id}/reactivate")
def reactivate(
    request: Request,
    inbound_id: InboundId,
    session: SessionDep,
    admin: AdminDep,
    _csrf: CsrfDep,
) -> Response:
    from newsletter.errors import NotFound
    from newsletter.subscriptions import reactivate as reactivate_reader

    message = bounce_reports.get_returned(session, inbound_id)
    if message.subscriber_id is None:
        raise NotFound("this message was not attributed to a reader")
    reactivate_reader(session, message.subscriber_id, staff_name=admin.name, inbound_id=message.id)
    return redirect(request, f"/admin/bounces/{message.id}")

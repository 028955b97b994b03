"""Admin-only pages: subscriber search and one subscriber's event history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from newsletter import subscriber_search
from newsletter.models import EventSource, SubscriberStatus
from newsletter.web.admin.deps import AdminDep, CsrfDep, RuntimeDep, SessionDep
from newsletter.web.admin.routing import AdminRoute, redirect, render

router = APIRouter(route_class=AdminRoute)
PAGE = 50


@router.get("/subscribers")
def subscriber_list(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    admin: AdminDep,
    q: str = Query("", max_length=subscriber_search.MAX_QUERY),
    status: SubscriberStatus | None = None,
    page: int = Query(1, ge=1, le=100_000),
) -> Response:
    from newsletter.dispatch import late_confirmations

    rows, total = subscriber_search.search(
        session, q, status=status, limit=PAGE, offset=(page - 1) * PAGE
    )
    late = late_confirmations(session, runtime.settings)
    return render(
        request,
        "admin/subscribers.html",
        {
            "rows": rows,
            "total": total,
            "q": q,
            "status": status.value if status else "",
            "statuses": [s.value for s in SubscriberStatus],
            "page": page,
            "pages": max(1, (total + PAGE - 1) // PAGE),
            "late": late,
        },
    )


@router.get("/subscribers/{subscriber_id}")
def subscriber_page(
    request: Request,
    subscriber_id: Annotated[int, Path(ge=1, le=subscriber_search.MAX_ID)],
    session: SessionDep,
    admin: AdminDep,
) -> Response:
    subscriber = subscriber_search.get_subscriber(session, subscriber_id)
    events = subscriber_search.history(session, subscriber_id)
    return render(request, "admin/subscriber.html", {"subscriber": subscriber, "events": events})


@router.post("/subscribers/{subscriber_id}/unsubscribe")
def unsubscribe(
    request: Request,
    subscriber_id: Annotated[int, Path(ge=1, le=subscriber_search.MAX_ID)],
    session: SessionDep,
    admin: AdminDep,
    _csrf: CsrfDep,
) -> Response:
    from newsletter.subscriptions import unsubscribe as unsubscribe_subscriber

    subscriber = subscriber_search.get_subscriber(session, subscriber_id)
    unsubscribe_subscriber(session, subscriber.id, source=EventSource.staff)
    return redirect(request, f"/admin/subscribers/{subscriber.id}")

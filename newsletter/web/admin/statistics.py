"""The statistics page: counts drawn as inline SVG charts, each with its numbers as a table."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from newsletter import statistics
from newsletter.languages import LANGUAGES
from newsletter.web.admin.charts import bar_chart, line_chart
from newsletter.web.admin.deps import SessionDep, StaffDep
from newsletter.web.admin.routing import AdminRoute, render

router = APIRouter(route_class=AdminRoute)


@router.get("/statistics")
def statistics_page(
    request: Request,
    session: SessionDep,
    staff: StaffDep,
    weeks: int = Query(12, ge=1, le=520),
) -> Response:
    status_points, language_points = statistics.over_time(session, weeks=weeks)
    labels = [p.week for p in status_points]
    ticks = [week.split("-")[1] for week in labels]  # "W05": the year is in the tooltips
    editions = list(reversed(statistics.per_edition(session)))  # oldest first, left to right
    status_chart = line_chart(
        "Subscribers by status",
        labels,
        {s: [p.counts[s] for p in status_points] for s in statistics.STATUSES},
        ticks=ticks,
    )
    language_chart = line_chart(
        "Active subscribers by language",
        labels,
        {lang: [p.counts[lang] for p in language_points] for lang in LANGUAGES},
        ticks=ticks,
    )
    edition_chart = bar_chart(
        "Confirmations and unsubscribes per edition",
        [e.week for e in editions],
        {
            "confirmations": [e.confirmations for e in editions],
            "unsubscribes": [e.unsubscribes for e in editions],
        },
    )
    return render(
        request,
        "admin/statistics.html",
        {
            "weeks": weeks,
            "by_status": statistics.by_status(session),
            "by_language": statistics.by_language(session),
            "status_points": status_points,
            "language_points": language_points,
            "editions": editions,
            "status_chart": status_chart,
            "language_chart": language_chart,
            "edition_chart": edition_chart,
        },
    )

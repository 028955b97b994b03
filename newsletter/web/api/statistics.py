"""/api/statistics: the numbers behind the staff area's charts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from newsletter import statistics
from newsletter.web.api.routing import ApiRoute, ApiStaff
from newsletter.web.api.schemas import StatisticsOut
from newsletter.web.deps import SessionDep

router = APIRouter(prefix="/statistics", tags=["statistics"], route_class=ApiRoute)


@router.get("", response_model=StatisticsOut, summary="Subscribers and editions in numbers")
def get_statistics(
    session: SessionDep, staff: ApiStaff, weeks: Annotated[int, Query(ge=1, le=520)] = 12
) -> StatisticsOut:
    status_points, language_points = statistics.over_time(session, weeks=weeks)
    return StatisticsOut(
        by_status=statistics.by_status(session),
        by_language=statistics.by_language(session),
        status_over_time=status_points,
        languages_over_time=language_points,
        editions=statistics.per_edition(session),
    )

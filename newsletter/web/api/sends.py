"""/api/sends/{week}: start or schedule, pause, resume, cancel, progress, and a test email."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.errors import ValidationError
from newsletter.web.admin.editions import load_edition
from newsletter.web.admin.sends import control, progress_dict
from newsletter.web.api.routing import ApiRoute, ApiStaff, utc
from newsletter.web.api.schemas import Message, ProgressOut, SendStart, TestSend
from newsletter.web.deps import RuntimeDep, SessionDep

router = APIRouter(prefix="/sends", tags=["sends"], route_class=ApiRoute)
WeekPath = Annotated[str, Path(pattern=r"^[0-9]{4}-W[0-9]{2}$", examples=["2020-W05"])]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The send cannot make this move from its current state"}
}


def _progress(session: Session, week: str) -> ProgressOut:
    from newsletter import dispatch

    edition = load_edition(session, week)
    data = progress_dict(dispatch.progress(session, edition.week))
    return ProgressOut(week=edition.week, scheduled_at=utc(edition.scheduled_at), **data)


def _when(at: datetime | None, settings: Settings) -> datetime | None:
    if at is None:
        return None
    if not 2000 <= at.year <= 2999:
        raise ValidationError("the schedule time must be a date in this millennium")
    moment = at if at.tzinfo else at.replace(tzinfo=settings.tz)
    if moment <= datetime.now(UTC):
        raise ValidationError("the schedule time is in the past")
    return moment


@router.get("/{week}", response_model=ProgressOut, summary="Progress of the week's send")
def get_progress(week: WeekPath, session: SessionDep, staff: ApiStaff) -> ProgressOut:
    return _progress(session, week)


@router.post(
    "/{week}",
    response_model=ProgressOut,
    status_code=202,
    summary="Send the week's edition now, or schedule it with `at`",
    responses=CONFLICT,
)
def start(
    week: WeekPath, body: SendStart, session: SessionDep, runtime: RuntimeDep, staff: ApiStaff
) -> ProgressOut:
    from newsletter import dispatch

    edition = load_edition(session, week)
    dispatch.start_send(
        session,
        runtime.settings,
        edition.week,
        at=_when(body.at, runtime.settings),
        fallback_language=body.fallback_language,
        jobs=runtime.jobs,
    )
    session.flush()
    return _progress(session, edition.week)


def _control(name: str):  # type: ignore[no-untyped-def]
    def action(
        week: WeekPath, session: SessionDep, runtime: RuntimeDep, staff: ApiStaff
    ) -> ProgressOut:
        edition = load_edition(session, week)
        control(name, session, runtime, edition.week)
        session.flush()
        return _progress(session, edition.week)

    action.__name__ = f"{name}_send"
    return action


for _name, _summary in (
    ("pause", "Pause a running send"),
    ("resume", "Resume a paused send"),
    ("cancel", "Cancel a scheduled, running or paused send"),
):
    router.add_api_route(
        f"/{{week}}/{_name}",
        _control(_name),
        methods=["POST"],
        response_model=ProgressOut,
        summary=_summary,
        responses=CONFLICT,
    )


@router.post("/{week}/test", response_model=Message, summary="Send one test email")
def test_send(
    week: WeekPath, body: TestSend, session: SessionDep, runtime: RuntimeDep, staff: ApiStaff
) -> Message:
    from newsletter import dispatch

    edition = load_edition(session, week)
    dispatch.send_test(session, runtime.settings, edition.week, body.to.strip(), runtime.transport)
    return Message(detail=f"a test email of {edition.week} went to {body.to.strip()}")

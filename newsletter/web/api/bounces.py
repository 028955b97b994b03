"""/api/bounces: what came back, one message with its raw text, reactivate (admin tokens);
/api/editions/{week}/bounce-rates: an edition's bounce and complaint rates (any token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from newsletter import bounce_reports
from newsletter.bounce_reports import Returned
from newsletter.errors import NotFound
from newsletter.models import InboundKind
from newsletter.web.api.routing import ApiAdmin, ApiRoute, ApiStaff, utc
from newsletter.web.api.schemas import (
    EditionRatesOut,
    ReturnedDetailOut,
    ReturnedList,
    ReturnedOut,
)
from newsletter.web.deps import SessionDep

router = APIRouter(tags=["bounces"], route_class=ApiRoute)
InboundId = Annotated[int, Path(ge=1, le=2**62)]
WeekPath = Annotated[str, Path(pattern=r"^[0-9]{4}-W[0-9]{2}$", examples=["2020-W05"])]


def returned_out(row: Returned) -> ReturnedOut:
    return ReturnedOut(
        id=row.id,
        received_at=utc(row.received_at),  # type: ignore[arg-type]
        kind=row.kind,
        status=row.status,
        reason=row.reason,
        subscriber_id=row.subscriber_id,
        email=row.email,
        subscriber_status=row.subscriber_status,
        edition=row.week,
        attributed_by=row.attributed_by,
    )


@router.get("/bounces", response_model=ReturnedList, summary="Bounces, complaints and replies")
def list_bounces(
    session: SessionDep,
    admin: ApiAdmin,
    kind: InboundKind | None = None,
    attributed: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> ReturnedList:
    rows, total = bounce_reports.list_returned(
        session, kind=kind, attributed=attributed, limit=limit, offset=offset
    )
    return ReturnedList(total=total, items=[returned_out(r) for r in rows])


@router.get("/bounces/{inbound_id}", response_model=ReturnedDetailOut, summary="One, raw")
def get_bounce(inbound_id: InboundId, session: SessionDep, admin: ApiAdmin) -> ReturnedDetailOut:
    m = bounce_reports.get_returned(session, inbound_id)
    return ReturnedDetailOut(
        **returned_out(m).model_dump(),
        recipient=m.recipient,
        mail_from=m.mail_from,
        channel=m.channel,
        size=m.size,
        truncated=m.truncated,
        detail=m.detail,
        error=m.error,
        raw=m.raw_text,
    )


@router.post(
    "/bounces/{inbound_id}/reactivate",
    response_model=ReturnedOut,
    summary="Reactivate the reader after a false bounce",
    responses={409: {"description": "The reader is not bounced (a complaint needs a new opt-in)"}},
)
def reactivate(inbound_id: InboundId, session: SessionDep, admin: ApiAdmin) -> ReturnedOut:
    from newsletter.subscriptions import reactivate as reactivate_reader

    m = bounce_reports.get_returned(session, inbound_id)
    if m.subscriber_id is None:
        raise NotFound("this message was not attributed to a reader")
    reactivate_reader(session, m.subscriber_id, staff_name=admin.name, inbound_id=m.id)
    session.flush()
    return returned_out(bounce_reports.get_returned(session, inbound_id))


@router.get(
    "/editions/{week}/bounce-rates",
    response_model=EditionRatesOut,
    summary="An edition's bounce and complaint rates",
)
def edition_rates(week: WeekPath, session: SessionDep, staff: ApiStaff) -> EditionRatesOut:
    from newsletter.editions import get_edition

    rates = bounce_reports.edition_rates(session, get_edition(session, week))
    return EditionRatesOut(**rates.__dict__)

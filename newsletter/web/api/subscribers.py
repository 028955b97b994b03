"""/api/subscribers: search, read, add and unsubscribe (admin tokens only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from newsletter import subscriber_search
from newsletter.languages import format_languages
from newsletter.models import EventSource, Subscriber, SubscriberStatus
from newsletter.web.api.routing import ApiAdmin, ApiRoute, utc
from newsletter.web.api.schemas import (
    EventOut,
    SubscriberCreate,
    SubscriberDetail,
    SubscriberList,
    SubscriberOut,
    Text,
)
from newsletter.web.deps import RuntimeDep, SessionDep

router = APIRouter(prefix="/subscribers", tags=["subscribers"], route_class=ApiRoute)
SubscriberId = Annotated[int, Path(ge=1, le=subscriber_search.MAX_ID)]


def subscriber_out(subscriber: Subscriber) -> SubscriberOut:
    return SubscriberOut(
        id=subscriber.id,
        email=subscriber.email,
        name=subscriber.name,
        languages=list(subscriber.language_list),
        status=SubscriberStatus(subscriber.status).value,
        created_at=utc(subscriber.created_at),  # type: ignore[arg-type]
        confirmed_at=utc(subscriber.confirmed_at),
        unsubscribed_at=utc(subscriber.unsubscribed_at),
    )


@router.get("", response_model=SubscriberList, summary="Search subscribers")
def list_subscribers(
    session: SessionDep,
    admin: ApiAdmin,
    q: Annotated[Text | None, Query(max_length=subscriber_search.MAX_QUERY)] = None,
    status: SubscriberStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SubscriberList:
    rows, total = subscriber_search.search(session, q, status=status, limit=limit, offset=offset)
    return SubscriberList(total=total, items=[subscriber_out(s) for s in rows])


@router.get("/{subscriber_id}", response_model=SubscriberDetail, summary="A subscriber's data")
def get_subscriber(
    subscriber_id: SubscriberId, session: SessionDep, admin: ApiAdmin
) -> SubscriberDetail:
    subscriber = subscriber_search.get_subscriber(session, subscriber_id)
    events = [
        EventOut(
            kind=e.kind,
            source=EventSource(e.source).value,
            edition_id=e.edition_id,
            detail=e.detail,
            created_at=utc(e.created_at),  # type: ignore[arg-type]
        )
        for e in subscriber_search.history(session, subscriber_id)
    ]
    return SubscriberDetail(**subscriber_out(subscriber).model_dump(), events=events)


@router.post(
    "",
    response_model=SubscriberOut,
    status_code=201,
    summary="Add a subscriber",
    responses={409: {"description": "The address is already subscribed or suppressed"}},
)
def create_subscriber(
    body: SubscriberCreate, session: SessionDep, runtime: RuntimeDep, admin: ApiAdmin
) -> SubscriberOut:
    from newsletter.subscriptions import add_subscriber

    subscriber = add_subscriber(
        session,
        runtime.settings.secret_key,
        body.email,
        format_languages(body.languages),
        name=body.name,
        confirmed=body.confirmed,
        source=EventSource.staff,
    )
    if subscriber.status == SubscriberStatus.pending:
        # Double opt-in: the confirmation goes out after this request commits.
        runtime.jobs.enqueue(session, "send_confirmation", subscriber_id=subscriber.id)
    return subscriber_out(subscriber)


@router.post("/{subscriber_id}/unsubscribe", response_model=SubscriberOut, summary="Unsubscribe")
def unsubscribe_subscriber(
    subscriber_id: SubscriberId, session: SessionDep, admin: ApiAdmin
) -> SubscriberOut:
    from newsletter.subscriptions import unsubscribe

    subscriber_search.get_subscriber(session, subscriber_id)
    return subscriber_out(unsubscribe(session, subscriber_id, source=EventSource.staff))

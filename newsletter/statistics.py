"""Aggregate statistics for staff: subscribers by status and language over time, per edition.

Only counts, never a person: the charts of the staff area and the API's /statistics.
The history is rebuilt from the append-only events; a subscriber's languages are taken as
they are now (a language change is not replayed), which is what a weekly chart needs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.languages import LANGUAGES
from newsletter.models import (
    Edition,
    EditionStatus,
    Event,
    Subscriber,
    SubscriberStatus,
)
from newsletter.subscriptions import EventKind

# Event kinds that move a subscriber's status, and where they move it ("added" and "imported"
# name the status they gave in their detail; the value here is the usual one).
STATUS_OF_KIND: dict[EventKind, SubscriberStatus] = {
    EventKind.subscribed: SubscriberStatus.pending,
    EventKind.resubscribed: SubscriberStatus.pending,
    EventKind.added: SubscriberStatus.active,
    EventKind.imported: SubscriberStatus.active,
    EventKind.confirmed: SubscriberStatus.active,
    EventKind.unsubscribed: SubscriberStatus.unsubscribed,
    EventKind.bounced: SubscriberStatus.bounced,
    EventKind.complained: SubscriberStatus.complained,
    EventKind.reactivated: SubscriberStatus.active,
}
CONFIRM_KINDS = (EventKind.confirmed,)
UNSUBSCRIBE_KINDS = (EventKind.unsubscribed,)
STATUSES: tuple[str, ...] = tuple(s.value for s in SubscriberStatus)


@dataclass(frozen=True)
class WeekCounts:
    """Counts at the end of one ISO week ("2020-W05")."""

    week: str
    counts: dict[str, int]


@dataclass(frozen=True)
class EditionCounts:
    week: str
    status: str
    planned: int
    sent: int
    failed: int
    confirmations: int
    unsubscribes: int


def _week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _status_after(kind: str, detail: object) -> SubscriberStatus:
    if isinstance(detail, dict) and detail.get("status") in STATUSES:
        return SubscriberStatus(detail["status"])
    return STATUS_OF_KIND[EventKind(kind)]


def by_status(session: Session) -> dict[str, int]:
    """Subscribers per status now (every status present, zeros included)."""
    rows = session.execute(select(Subscriber.status, func.count()).group_by(Subscriber.status))
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in rows:
        counts[SubscriberStatus(status).value] = count
    return counts


def by_language(session: Session) -> dict[str, int]:
    """Active subscribers reading each language (a two-language reader counts twice)."""
    rows = session.execute(
        select(Subscriber.languages, func.count())
        .where(Subscriber.status == SubscriberStatus.active)
        .group_by(Subscriber.languages)
    )
    counts = dict.fromkeys(LANGUAGES, 0)
    for languages, count in rows:
        for lang in languages.split(","):
            counts[lang] += count
    return counts


def week_ends(weeks: int, now: datetime | None = None) -> list[datetime]:
    """The ends (next Monday 00:00 UTC) of the last `weeks` ISO weeks, the current one last."""
    now = _aware(now or datetime.now(UTC))
    monday = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    current_end = monday + timedelta(days=7)
    return [current_end - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]


def over_time(
    session: Session, *, weeks: int = 12, now: datetime | None = None
) -> tuple[list[WeekCounts], list[WeekCounts]]:
    """Subscribers by status, and active subscribers by language, at the end of each week."""
    ends = week_ends(weeks, now)
    kinds = list(STATUS_OF_KIND)
    rows = session.execute(
        select(
            Event.subscriber_id, Event.kind, Event.detail, Event.created_at, Subscriber.languages
        )
        .join(Subscriber, Subscriber.id == Event.subscriber_id)
        .where(Event.kind.in_(kinds), Event.created_at < ends[-1])
        .order_by(Event.created_at, Event.id)
        .execution_options(yield_per=5000)
    )
    state: dict[int, tuple[SubscriberStatus, str]] = {}
    status_points: list[WeekCounts] = []
    language_points: list[WeekCounts] = []
    index = 0

    def snapshot(end: datetime) -> None:
        statuses = Counter(status.value for status, _ in state.values())
        langs: Counter[str] = Counter()
        for status, languages in state.values():
            if status == SubscriberStatus.active:
                langs.update(languages.split(","))
        label = _week_label((end - timedelta(days=1)).date())
        status_points.append(WeekCounts(label, {s: statuses.get(s, 0) for s in STATUSES}))
        language_points.append(WeekCounts(label, {lang: langs.get(lang, 0) for lang in LANGUAGES}))

    for subscriber_id, kind, detail, created_at, languages in rows:
        moment = _aware(created_at)
        while index < len(ends) and moment >= ends[index]:
            snapshot(ends[index])
            index += 1
        state[subscriber_id] = (_status_after(kind, detail), languages)
    while index < len(ends):
        snapshot(ends[index])
        index += 1
    return status_points, language_points


def per_edition(session: Session, *, limit: int = 20) -> list[EditionCounts]:
    """For each edition that went out, newest first: delivery counts, the unsubscribes its
    links brought, and the confirmations between its send and the next edition's."""
    editions = list(
        session.scalars(
            select(Edition)
            .where(Edition.started_at.is_not(None))
            .order_by(Edition.started_at.desc())
            .limit(limit)
        )
    )
    if not editions:
        return []
    ids = [e.id for e in editions]
    unsubscribes = dict(
        session.execute(
            select(Event.edition_id, func.count())
            .where(Event.kind.in_(UNSUBSCRIBE_KINDS), Event.edition_id.in_(ids))
            .group_by(Event.edition_id)
        ).all()
    )
    oldest = min(_aware(e.started_at) for e in editions if e.started_at)
    confirm_times = [
        _aware(t)
        for t in session.scalars(
            select(Event.created_at).where(
                Event.kind.in_(CONFIRM_KINDS), Event.created_at >= oldest
            )
        )
    ]
    out: list[EditionCounts] = []
    window_end: datetime | None = None
    for edition in editions:  # newest first: each window ends where the newer one starts
        start = _aware(edition.started_at)  # type: ignore[arg-type]
        confirmations = sum(
            1 for t in confirm_times if t >= start and (window_end is None or t < window_end)
        )
        out.append(
            EditionCounts(
                week=edition.week,
                status=EditionStatus(edition.status).value,
                planned=edition.planned_count,
                sent=edition.sent_count,
                failed=edition.failed_count,
                confirmations=confirmations,
                unsubscribes=unsubscribes.get(edition.id, 0),
            )
        )
        window_end = start
    return out

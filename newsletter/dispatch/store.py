"""The set-based SQL of sending: plan deliveries, hand out claims, record results in bulk."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Update,
    any_,
    bindparam,
    case,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from newsletter.db import is_postgresql, rowcount
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
)

D = Delivery.__table__
S = Subscriber.__table__
E = Edition.__table__
Q = DeliveryStatus


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without their zone; every stored time is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class Claim(NamedTuple):
    delivery_id: int
    subscriber_id: int
    attempts: int
    email: str
    name: str | None
    languages: str
    active: bool
    link_salt: int  # bound into the unsubscribe link


@dataclass
class Outcomes:
    """Results of a stretch of sending, waiting to be written in a few statements."""

    sent: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: dict[str, list[int]] = field(default_factory=dict)  # reply -> delivery ids
    retry: dict[tuple[int, str], list[int]] = field(default_factory=dict)  # (attempts, reply)
    bounced: list[int] = field(default_factory=list)  # subscriber ids
    # Not the readers' fault (outbox, relay credentials, relay down past the retries): these
    # go back to the queue untouched and the edition pauses, saying why.
    held: list[int] = field(default_factory=list)
    hold_reason: str | None = None

    def __len__(self) -> int:
        return (
            len(self.sent)
            + len(self.skipped)
            + sum(map(len, self.failed.values()))
            + sum(map(len, self.retry.values()))
            + len(self.held)
        )


def ids_match(
    postgresql: bool, column: ColumnElement[int], ids: Sequence[int] | str
) -> ColumnElement[bool]:
    """`column = ANY(:ids)` on PostgreSQL: one array parameter, so the statement's text is the
    same for any number of ids (SQLAlchemy and psycopg cache it; an expanded IN of hundreds of
    parameters costs more to build and parse than the UPDATE itself). IN on SQLite.
    `ids` is the ids themselves, or the name of a parameter given at execution."""
    param = {"key": ids} if isinstance(ids, str) else {"key": None, "value": list(ids)}
    if postgresql:
        return column == any_(bindparam(**param, type_=ARRAY(BigInteger)))
    return column.in_(bindparam(**param, expanding=True))


def id_in(session: Session, column: ColumnElement[int], ids: Sequence[int]) -> ColumnElement[bool]:
    return ids_match(is_postgresql(session), column, ids)


# A claim's fencing token is the `attempts` its claim set: each claim adds one, so a claim
# the tick took and another worker made again carries a higher one. Maps delivery id to it.
Tokens = Mapping[int, int]


def held_by(tokens: Tokens, ids: Iterable[int]) -> ColumnElement[bool]:
    """These deliveries are still in flight under the claims that hold `tokens`: a write
    under this condition never touches a claim the tick took and another worker made since."""
    pairs = [(i, tokens[i]) for i in ids]
    return (D.c.status == Q.sending.value) & tuple_(D.c.id, D.c.attempts).in_(pairs)


def plan_chunk(
    session: Session, edition_id: int, after: int, size: int
) -> tuple[list[int], int | None]:
    """Deliveries for the next `size` active subscribers with an id above `after`.

    Returns the new delivery ids (ascending) and the subscriber id to resume after, or None
    when this chunk took the last active subscriber. Repeats add only newcomers.
    """
    session.flush()
    active = [S.c.status == SubscriberStatus.active.value, S.c.id > after]
    # The chunk's last subscriber, and whether anyone comes after it.
    bounds = session.scalars(
        select(S.c.id).where(*active).order_by(S.c.id).offset(size - 1).limit(2)
    ).all()
    last = bounds[0] if len(bounds) == 2 else None
    if last is not None:
        active.append(S.c.id <= last)
    return plan_subscribers(session, edition_id, *active), last


def plan_subscribers(session: Session, edition_id: int, *where: ColumnElement[bool]) -> list[int]:
    """One INSERT … SELECT: a queued delivery for each subscriber matching `where` who has
    none of this edition yet (the unique key makes repeats add nothing); new ids, ascending."""
    chosen = select(literal(edition_id), S.c.id, literal(Q.queued.value), literal(0)).where(*where)
    insert = pg_insert if is_postgresql(session) else sqlite_insert
    stmt = (
        insert(D)
        .from_select(["edition_id", "subscriber_id", "status", "attempts"], chosen)
        .on_conflict_do_nothing(index_elements=["edition_id", "subscriber_id"])
        .returning(D.c.id)
    )
    return sorted(session.scalars(stmt))


def ranges_of(ids: Sequence[int], size: int) -> list[tuple[int, int]]:
    """Ascending ids cut into closed (first, last) ranges of `size` ids each."""
    return [(ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), size)]


def batch_ranges(
    session: Session, edition_id: int, size: int, *, due_by: datetime | None = None
) -> list[tuple[int, int | None]]:
    """Cut the queued deliveries into id ranges of `size` (keyset); the last is open."""
    session.flush()
    where = [D.c.edition_id == edition_id, D.c.status == Q.queued.value]
    if due_by is not None:
        where.append((D.c.next_attempt_at.is_(None)) | (D.c.next_attempt_at <= due_by))
    numbered = (
        select(D.c.id, func.row_number().over(order_by=D.c.id).label("rn")).where(*where).subquery()
    )
    starts = list(
        session.scalars(
            select(numbered.c.id).where((numbered.c.rn - 1) % size == 0).order_by(numbered.c.id)
        )
    )
    return [
        (first, starts[i + 1] - 1 if i + 1 < len(starts) else None)
        for i, first in enumerate(starts)
    ]


# A claim range with no last id: the statement stays the same, with a bound no id reaches.
NO_LAST_ID = 2**62


@cache
def _claim_statement(postgresql: bool) -> Update:
    """The claim, built once per dialect (only its parameters change from call to call)."""
    now = bindparam("now", type_=D.c.claimed_at.type)
    pick = (
        select(D.c.id)
        .where(
            D.c.edition_id == bindparam("of_edition"),
            D.c.status == Q.queued.value,
            D.c.id.between(bindparam("from_id"), bindparam("to_id")),
            (D.c.next_attempt_at.is_(None)) | (D.c.next_attempt_at <= now),
        )
        .order_by(D.c.id)
        .limit(bindparam("at_most"))
    )
    if postgresql:
        pick = pick.with_for_update(skip_locked=True)
    # SQLite has a single writer: the UPDATE itself is the lock.
    claiming = (
        update(D)
        .where(D.c.id.in_(pick.scalar_subquery()))
        .values(status=Q.sending.value, claimed_at=now, attempts=D.c.attempts + 1)
    )
    if postgresql:
        # One round trip: the subscriber's columns come back with the claimed rows.
        return claiming.where(S.c.id == D.c.subscriber_id).returning(
            D.c.id,
            D.c.subscriber_id,
            D.c.attempts,
            S.c.email,
            S.c.name,
            S.c.languages,
            S.c.status,
            S.c.link_salt,
        )
    return claiming.returning(D.c.id, D.c.subscriber_id, D.c.attempts)


def claim(
    session: Session,
    edition_id: int,
    first_id: int,
    last_id: int | None,
    limit: int,
    now: datetime,
) -> list[Claim]:
    """Take up to `limit` due queued deliveries of the range; two workers never share one."""
    postgresql = is_postgresql(session)
    params = {
        "of_edition": edition_id,
        "from_id": first_id,
        "to_id": NO_LAST_ID if last_id is None else last_id,
        "at_most": limit,
        "now": now,
    }
    rows = session.execute(_claim_statement(postgresql), params).all()
    claimed: Sequence[Any]
    if postgresql:
        people = {row[1]: row[3:] for row in rows}
        claimed = [row[:3] for row in rows]
    else:
        # SQLite's RETURNING cannot name the FROM table of an UPDATE: a second SELECT.
        claimed = rows
        if not claimed:
            return []
        people = {
            row[0]: row[1:]
            for row in session.execute(
                select(S.c.id, S.c.email, S.c.name, S.c.languages, S.c.status, S.c.link_salt).where(
                    S.c.id.in_([c[1] for c in claimed])
                )
            )
        }
    active = SubscriberStatus.active.value
    out = []
    for delivery_id, subscriber_id, attempts in sorted(claimed, key=lambda row: row[0]):
        email, name, languages, status, salt = people[subscriber_id]
        out.append(
            Claim(
                delivery_id, subscriber_id, attempts, email, name, languages, status == active, salt
            )
        )
    return out


@cache
def _held_statement(postgresql: bool) -> Select[Any]:
    """Which of these deliveries are in flight, under which token, and whether their reader
    is still active: by primary key, nothing else read."""
    return (
        select(D.c.id, D.c.attempts, S.c.status == SubscriberStatus.active.value)
        .join_from(D, S, S.c.id == D.c.subscriber_id)
        .where(ids_match(postgresql, D.c.id, "ids"), D.c.status == Q.sending.value)
    )


def still_held(session: Session, tokens: Tokens) -> dict[int, bool]:
    """The deliveries of a stretch that this worker's claims still hold, each with whether its
    reader is still active (not unsubscribed, erased or bounced since the claim): one SELECT
    by primary key right before the stretch goes on the wire. A delivery missing from the
    answer was taken from this worker and is another's to send."""
    statement = _held_statement(is_postgresql(session))
    # (delivery id, attempts, active): typed loosely, as Select's parameters differ by version
    rows: Iterable[Any] = session.execute(statement, {"ids": list(tokens)}).all()  # not row by row
    return {i: active for i, attempts, active in rows if tokens[i] == attempts}


MAX_BACKOFF = 3600.0  # seconds: the longest a postponed delivery waits (and a batch task)


def backoff(attempts: int, base: float) -> timedelta:
    """Exponential back-off after the n-th failed attempt, capped at an hour."""
    return timedelta(seconds=min(MAX_BACKOFF, base * 2 ** max(0, attempts - 1)))


@cache
def _mark_sent_statement(postgresql: bool) -> Update:
    """The UPDATE that marks a stretch sent: the hot one, so built once per dialect."""
    return (
        update(D)
        .where(ids_match(postgresql, D.c.id, "ids"))
        .values(
            status=Q.sent.value,
            sent_at=bindparam("now", type_=D.c.sent_at.type),
            last_error=None,
            # message_id stays NULL: the Message-ID is a token made from the reader and the
            # edition (message_ids.py); only mail sent before it has one stored here.
        )
    )


def record(
    session: Session,
    edition_id: int,
    outcomes: Outcomes,
    tokens: Tokens,
    *,
    now: datetime,
    retry_backoff: float,
    max_attempts: int,
) -> None:
    """Write a stretch of results in a handful of UPDATEs (the ClaimKeeper renews the rest).

    Every write but `sent` is fenced by the claims' `tokens`: a worker that was away long
    enough for its claims to be taken never queues, fails or releases a delivery another
    worker holds now. `sent` is a fact whoever holds the row: written as it is, it stops the
    new holder before the message leaves twice."""
    if outcomes.sent:
        session.execute(
            _mark_sent_statement(is_postgresql(session)),
            {"ids": outcomes.sent, "now": now},
        )
    if outcomes.skipped:
        session.execute(
            update(D)
            .where(held_by(tokens, outcomes.skipped))
            .values(status=Q.skipped.value, last_error="subscriber no longer active")
        )
    for reply, ids in outcomes.failed.items():
        session.execute(
            update(D).where(held_by(tokens, ids)).values(status=Q.failed.value, last_error=reply)
        )
    for (attempts, reply), ids in outcomes.retry.items():
        gave_up = attempts >= max_attempts
        session.execute(
            update(D)
            .where(held_by(tokens, ids))
            .values(
                status=Q.failed.value if gave_up else Q.queued.value,
                claimed_at=None,
                next_attempt_at=None if gave_up else now + backoff(attempts, retry_backoff),
                last_error=(f"gave up after {attempts} attempts: " if gave_up else "") + reply,
            )
        )
    if outcomes.held:
        session.execute(
            update(D)
            .where(held_by(tokens, outcomes.held))
            .values(
                status=Q.queued.value,
                claimed_at=None,
                next_attempt_at=None,
                attempts=0,
                last_error=outcomes.hold_reason,
            )
        )
        hold(session, edition_id, outcomes.hold_reason or "the send cannot go on", now)


def renew(session: Session, tokens: Tokens, now: datetime) -> None:
    """The claims' heartbeat: rows still in flight under these claims say their worker is
    alive at `now`."""
    session.execute(update(D).where(held_by(tokens, tokens)).values(claimed_at=now))


# A heartbeat that says "no task holds this edition": the next tick enqueues its batches.
IDLE = datetime(2000, 1, 1, tzinfo=UTC)


def touch(session: Session, edition_id: int, now: datetime) -> None:
    """The edition's heartbeat: the tick leaves an edition alone while workers touch it."""
    session.execute(update(E).where(E.c.id == edition_id).values(updated_at=now))


def release(session: Session, tokens: Tokens) -> None:
    """Give claims back untried: queued again, the attempt not counted."""
    session.execute(
        update(D)
        .where(held_by(tokens, tokens))
        .values(status=Q.queued.value, claimed_at=None, attempts=D.c.attempts - 1)
    )


def give_up(session: Session, tokens: Tokens, reason: str) -> None:
    """Claims that can never be sent: skipped, saying why."""
    session.execute(
        update(D)
        .where(held_by(tokens, tokens))
        .values(status=Q.skipped.value, claimed_at=None, last_error=reason[:500])
    )


def hold(session: Session, edition_id: int, reason: str, now: datetime) -> None:
    """Pause a sending edition that cannot go on, saying why (staff resume it)."""
    session.execute(
        update(E)
        .where(E.c.id == edition_id, E.c.status == EditionStatus.sending.value)
        .values(status=EditionStatus.paused.value, waiting_reason=reason, updated_at=now)
    )


def has_stale_claims(session: Session, edition_id: int, cutoff: datetime) -> bool:
    """Some claim of the edition was last renewed before `cutoff`."""
    found = session.scalar(
        select(D.c.id)
        .where(D.c.edition_id == edition_id, D.c.status == Q.sending.value, D.c.claimed_at < cutoff)
        .limit(1)
    )
    return found is not None


def note_claims_checked(session: Session, edition_id: int, at: datetime | None) -> None:
    """Remember when the tick saw stale claims, leaving the workers' heartbeat as it was."""
    session.execute(
        update(E)
        .where(E.c.id == edition_id)
        .values(claims_checked_at=at, updated_at=E.c.updated_at)
    )


def requeue_stale(session: Session, edition_id: int, cutoff: datetime, max_attempts: int) -> int:
    """Claims last renewed before `cutoff` belong to a dead worker: queue them again (or give
    up on them after max_attempts)."""
    result = session.execute(
        update(D)
        .where(
            D.c.edition_id == edition_id,
            D.c.status == Q.sending.value,
            D.c.claimed_at < cutoff,
        )
        .values(
            status=case((D.c.attempts >= max_attempts, Q.failed.value), else_=Q.queued.value),
            claimed_at=None,
            last_error="claim expired: the worker was lost",
        )
    )
    return rowcount(result)


def counts(session: Session, edition_id: int) -> dict[DeliveryStatus, int]:
    session.flush()
    rows = session.execute(
        select(D.c.status, func.count()).where(D.c.edition_id == edition_id).group_by(D.c.status)
    )
    found = {DeliveryStatus(status): n for status, n in rows}
    return {status: found.get(status, 0) for status in DeliveryStatus}


def unfinished(session: Session, edition_id: int) -> bool:
    """Something is queued or in flight, or not every reader is planned yet."""
    session.flush()
    planning = session.scalar(select(E.c.plan_cursor).where(E.c.id == edition_id))
    return planning is not None or (
        session.scalar(
            select(D.c.id)
            .where(
                D.c.edition_id == edition_id,
                D.c.status.in_([Q.queued.value, Q.sending.value]),
            )
            .limit(1)
        )
        is not None
    )


def finish_if_done(session: Session, edition_id: int, now: datetime) -> bool:
    """A sending edition with nothing queued or in flight becomes sent, with its counts (True);
    a sent one that sent a late delivery has its counts brought up to date (False)."""
    if unfinished(session, edition_id):
        return False
    n = counts(session, edition_id)
    counted = {
        "sent_count": n[Q.sent],
        "failed_count": n[Q.failed],
        "skipped_count": n[Q.skipped],
        "planned_count": sum(n.values()),
    }
    done = session.execute(
        update(E)
        .where(
            E.c.id == edition_id,
            E.c.status == EditionStatus.sending.value,
            E.c.plan_cursor.is_(None),
        )
        .values(status=EditionStatus.sent.value, finished_at=now, updated_at=now, **counted)
    )
    if rowcount(done):
        return True
    # A sent edition that took a late delivery (a new reader's welcome): its counts follow.
    session.execute(
        update(E)
        .where(E.c.id == edition_id, E.c.status == EditionStatus.sent.value)
        .values(**counted)
    )
    return False


def next_due(
    session: Session, edition_id: int, first_id: int = 0, last_id: int | None = None
) -> datetime | None:
    """When the earliest postponed delivery of the range is due (None: nothing waits)."""
    query = select(func.min(D.c.next_attempt_at)).where(
        D.c.edition_id == edition_id,
        D.c.status == Q.queued.value,
        D.c.id >= first_id,
    )
    if last_id is not None:
        query = query.where(D.c.id <= last_id)
    return as_utc(session.scalar(query))


def requeue_failed(session: Session, edition_id: int) -> int:
    """Queue the edition's failed deliveries again, attempts afresh, for readers still active
    (a hard bounce made its reader `bounced`: that one stays failed)."""
    active = select(S.c.id).where(S.c.status == SubscriberStatus.active.value)
    result = session.execute(
        update(D)
        .where(
            D.c.edition_id == edition_id,
            D.c.status == Q.failed.value,
            D.c.subscriber_id.in_(active.scalar_subquery()),
        )
        .values(status=Q.queued.value, attempts=0, claimed_at=None, next_attempt_at=None)
    )
    return rowcount(result)


def skip_queued(session: Session, edition_id: int, reason: str) -> int:
    result = session.execute(
        update(D)
        .where(D.c.edition_id == edition_id, D.c.status == Q.queued.value)
        .values(status=Q.skipped.value, last_error=reason)
    )
    return rowcount(result)

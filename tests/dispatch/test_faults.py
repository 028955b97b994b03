"""Exactly once under slow and failing dependencies, with no process killed: each test
counts the messages every reader got at the sink."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta

import pytest
from dispatch_kit import (
    SAMPLE,
    WEEK,
    PrivatePostgres,
    RecordingJobs,
    add_readers,
    free_port,
    pg_only,
    slow_smtp_server,
)

from newsletter import dispatch, migrate
from newsletter.config import Settings
from newsletter.db import make_engine
from newsletter.models import EditionStatus, utcnow
from newsletter.runtime import Runtime
from newsletter.transport import make_transport

log = logging.getLogger(__name__)
FEW = [("be",), ("ru",), ("en", "be")]


def _sent(runtime: Runtime) -> bool:
    try:
        with runtime.session() as session:
            return dispatch.progress(session, WEEK).status is EditionStatus.sent
    except Exception:  # the database may be away: not sent as far as we know
        return False


@contextmanager
def _workers_and_tick(runtime: Runtime, edition_id: int, workers: int = 2) -> Iterator[None]:
    """`workers` threads that each send the edition's batch again and again (as Celery
    retries would), and a tick every 0.2 s; all stop when the edition is sent."""
    done = threading.Event()

    def work() -> None:
        while not done.is_set():
            try:
                dispatch.send_batch(
                    runtime.sessions,
                    runtime.settings,
                    make_transport(runtime.settings),
                    edition_id=edition_id,
                    first_id=0,
                )
            except Exception:
                log.exception("worker")
                time.sleep(0.2)  # a lost task: the next loop is the retry
            time.sleep(0.05)

    def tick() -> None:
        while not done.is_set():
            try:
                with runtime.session() as session:
                    dispatch.tick(session, runtime.settings, RecordingJobs())
            except Exception:
                log.exception("tick")  # the database is away; the beat ticks again later
            done.wait(0.2)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    threads.append(threading.Thread(target=tick))
    for t in threads:
        t.start()
    try:
        yield
    finally:
        done.set()
        for t in threads:
            t.join(60)


def _wait_sent(runtime: Runtime, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _sent(runtime):
        if time.monotonic() > deadline:
            with runtime.session() as session:
                raise AssertionError(f"not sent in time: {dispatch.progress(session, WEEK)}")
        time.sleep(0.1)


def _start(runtime: Runtime) -> int:
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=RecordingJobs())
        return dispatch.progress(session, WEEK).total and _edition_id(session)


def _edition_id(session) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from newsletter.models import Edition

    return int(session.scalar(select(Edition.id).where(Edition.week == WEEK)))


@pytest.mark.slow
def test_slow_smtp_server_sends_nobody_twice(runtime, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a relay that takes 0.3 s per reply keeps a stretch on the wire for several
    stale periods while a second worker and the tick run: every reader gets one copy."""
    readers(10, sets=FEW)
    with slow_smtp_server(0.3) as (url, sink):
        runtime = replace(runtime, settings=replace(runtime.settings, smtp_url=url))
        started = time.monotonic()
        edition_id = _start(runtime)
        with _workers_and_tick(runtime, edition_id):
            _wait_sent(runtime, timeout=60)
        took = time.monotonic() - started
        copies = sink.copies()
    assert took > 2 * runtime.settings.stale_after  # the stretch outlived two stale periods
    assert len(copies) == 10 and set(copies.values()) == {1}, copies


@pytest.fixture
def private_pg(settings: Settings) -> Iterator[tuple[Runtime, PrivatePostgres]]:
    """A runtime on a PostgreSQL cluster of the test's own, migrated, with the sample week."""
    server = PrivatePostgres()
    server.start()
    engine = make_engine(server.url, pool_size=5, max_overflow=10)
    try:
        migrate.upgrade(engine)
        # One batch plans everybody at the start: no `plan` job is needed.
        settings = replace(settings, database_url=server.url, batch_size=100)
        runtime = Runtime(settings, _engine=engine)
        from newsletter.editions import import_edition_file

        with runtime.session() as session:
            import_edition_file(session, SAMPLE)
        yield runtime, server
    finally:
        engine.dispose()
        server.remove()


@pg_only
@pytest.mark.slow
def test_postgresql_away_mid_send_sends_nobody_twice(private_pg) -> None:  # type: ignore[no-untyped-def]
    """Scenario: PostgreSQL stops for 5 s (two and a half stale periods) while a stretch is on
    the wire, then comes back; two workers and the tick run throughout: every reader gets
    exactly one copy and the edition ends sent."""
    runtime, server = private_pg
    with runtime.session() as session:
        add_readers(session, 40, sets=FEW)
    with slow_smtp_server(0.05) as (url, sink):
        runtime = replace(runtime, settings=replace(runtime.settings, smtp_url=url))
        edition_id = _start(runtime)
        with _workers_and_tick(runtime, edition_id):
            time.sleep(1.0)
            server.stop()
            time.sleep(5.0)
            server.start()
            _wait_sent(runtime, timeout=90)
        copies = sink.copies()
    assert len(copies) == 40 and set(copies.values()) == {1}, copies


def test_unsubscribe_erase_and_bounce_during_a_rate_limited_send(
    settings, engine, smtp_server, edition, readers
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: at 10 messages/s, once the first messages have left, one reader of the claim
    unsubscribes, one is erased and one bounces elsewhere: none of them gets the edition,
    everybody else gets one copy, and the three deliveries are not counted as sent."""
    from newsletter import subscriptions
    from newsletter.models import EventSource

    url, handler = smtp_server
    runtime = Runtime(replace(settings, smtp_url=url, rate_limit=10.0), _engine=engine)
    people = readers(20, sets=[("be",)])
    leaving = {p.email: p.id for p in people[-3:]}
    edition_id = _start(runtime)
    sender = threading.Thread(
        target=dispatch.send_batch,
        args=(runtime.sessions, runtime.settings, runtime.transport),
        kwargs={"edition_id": edition_id, "first_id": 0},
    )
    sender.start()
    deadline = time.monotonic() + 20
    while len(handler.messages) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    unsubscribed, erased, bounced = leaving.values()
    with runtime.session() as session:
        subscriptions.unsubscribe(session, unsubscribed, source=EventSource.link)
        subscriptions.forget(session, runtime.settings.secret_key, erased)
        subscriptions.mark_bounced(session, [bounced], detail="hard bounce elsewhere")
    sender.join(30)
    received = handler.by_recipient()
    assert not set(leaving) & set(received)
    assert len(received) == 17 and all(len(c) == 1 for c in received.values())
    with runtime.session() as session:
        p = dispatch.progress(session, WEEK)
    assert (p.sent, p.skipped, p.failed, p.queued, p.sending) == (17, 2, 0, 0, 0)


class TakingHandler:
    """A relay that, at the first recipient it is given, lets `take` run (as if the worker were
    cut off long enough for the tick to take its claims and another worker to claim them
    again), and answers the first `refused` recipients with 451 (try later)."""

    def __init__(self, take, refused: int) -> None:  # type: ignore[no-untyped-def]
        self.take = take
        self.refused = refused
        self.seen = 0
        self.accepted: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        self.seen += 1
        if self.seen == 1:
            self.take()
        if self.seen <= self.refused:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.accepted.extend(a.lower() for a in envelope.rcpt_tos)
        return "250 accepted"


def _send_while_claims_are_taken(runtime, readers, refused: int):  # type: ignore[no-untyped-def]
    """One worker sends a claim of two stretches; at its first recipient, its claims are taken
    (as the tick does with stale ones) and claimed again by a second worker. The relay answers
    the first `refused` recipients with 451. Returns (the second worker's claims, the relay,
    the first worker's report, every delivery's (status, attempts))."""
    from aiosmtpd.controller import Controller
    from sqlalchemy import select, update

    from newsletter.dispatch import store
    from newsletter.dispatch.sending import FLUSH_EVERY
    from newsletter.models import Delivery

    readers(2 * FLUSH_EVERY, sets=[("be",)])  # one claim, two stretches
    runtime = replace(runtime, settings=replace(runtime.settings, batch_size=100))
    edition_id = _start(runtime)
    second_worker: list[store.Claim] = []

    def take() -> None:
        with runtime.sessions.begin() as session:
            session.execute(update(Delivery).values(claimed_at=utcnow() - timedelta(hours=1)))
            store.requeue_stale(session, edition_id, utcnow(), max_attempts=20)
            second_worker.extend(store.claim(session, edition_id, 0, None, 1000, utcnow()))

    handler = TakingHandler(take, refused=refused)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        runtime = replace(
            runtime, settings=replace(runtime.settings, smtp_url=f"smtp://127.0.0.1:{port}")
        )
        report = dispatch.send_batch(
            runtime.sessions,
            runtime.settings,
            make_transport(runtime.settings),
            edition_id=edition_id,
            first_id=0,
        )
    finally:
        controller.stop()
    with runtime.session() as session:
        rows = session.execute(select(Delivery.status, Delivery.attempts)).all()
    return second_worker, handler, report, rows


def test_a_worker_whose_claims_were_taken_leaves_them_to_their_new_holder(
    runtime, edition, readers
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: while a worker's first stretch is on the wire, its claims are taken (the tick
    saw them stale) and claimed again by a second worker. The first worker's results (451:
    try later) must not queue the second worker's deliveries again, and its next stretch must
    not leave at all: the second worker is the one to send them."""
    from newsletter.dispatch.sending import FLUSH_EVERY
    from newsletter.models import DeliveryStatus

    second_worker, handler, report, rows = _send_while_claims_are_taken(
        runtime, readers, refused=FLUSH_EVERY
    )
    assert len(second_worker) == 2 * FLUSH_EVERY  # the take happened, with the new claims
    assert handler.accepted == []  # the second stretch never left from the first worker
    assert report.sent == 0
    # Every delivery is still the second worker's, in flight under its claim (attempts 2).
    assert set(rows) == {(DeliveryStatus.sending, 2)}


def test_a_worker_whose_next_claims_were_taken_sends_its_stretch_and_stops(
    runtime, edition, readers
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: as above, but the relay accepts the first stretch: it is recorded sent (it
    left; the new holder then skips it), and the second stretch, read back in the same
    transaction as that write, does not leave from the first worker."""
    from newsletter.dispatch.sending import FLUSH_EVERY
    from newsletter.models import DeliveryStatus

    _, handler, report, rows = _send_while_claims_are_taken(runtime, readers, refused=0)
    assert len(handler.accepted) == FLUSH_EVERY == report.sent
    assert sorted(set(rows)) == [(DeliveryStatus.sending, 2), (DeliveryStatus.sent, 2)]
    assert rows.count((DeliveryStatus.sent, 2)) == FLUSH_EVERY

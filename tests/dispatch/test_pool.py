"""The pool pings a connection that sat idle, not one handed back a moment ago."""

from __future__ import annotations

import time

import pytest
from dispatch_kit import PrivatePostgres
from sqlalchemy import text

from newsletter.db import IDLE_BEFORE_PING, make_engine


@pytest.fixture
def private_postgres():  # type: ignore[no-untyped-def]
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.remove()


def _count_pings(engine) -> list[int]:  # type: ignore[no-untyped-def]
    pings = [0]
    ping = engine.dialect.do_ping

    def counting(dbapi_connection):  # type: ignore[no-untyped-def]
        pings[0] += 1
        return ping(dbapi_connection)

    engine.dialect.do_ping = counting
    return pings


def test_a_restarted_server_is_reconnected_to_after_an_idle_moment(private_postgres) -> None:  # type: ignore[no-untyped-def]
    """Scenario: PostgreSQL restarts while the pool holds a connection; the next unit of work
    after the connection sat idle gets a fresh one instead of an error."""
    engine = make_engine(private_postgres.url, pool_size=1)
    try:
        with engine.connect() as conn:
            backend = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        private_postgres.stop()
        private_postgres.start()
        time.sleep(IDLE_BEFORE_PING + 0.2)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != backend
    finally:
        engine.dispose()


def test_a_connection_in_use_a_moment_ago_is_not_pinged(private_postgres) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(private_postgres.url, pool_size=1)
    pings = _count_pings(engine)
    try:
        for _ in range(5):  # a worker's transactions, one right after another
            with engine.begin() as conn:
                conn.execute(text("SELECT 1"))
        assert pings[0] == 1  # the first checkout of a new connection only
        time.sleep(IDLE_BEFORE_PING + 0.2)
        with engine.begin() as conn:
            conn.execute(text("SELECT 1"))
        assert pings[0] == 2
    finally:
        engine.dispose()

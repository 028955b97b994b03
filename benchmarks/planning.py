"""Planning alone: `python -m benchmarks.planning --subscribers 1000000`.

A fresh PostgreSQL database with N subscribers (COPY) and the sample edition. `start_send` and
the `plan` job run in this process with jobs that are only counted, so the figure is what
planning costs without sending competing for the cores. The floor, in the same run: one
INSERT … SELECT of all N deliveries in a single statement.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from benchmarks.database import ADMIN_DSN, BenchDatabase, load_subscribers
from newsletter import dispatch, migrate
from newsletter.config import Settings
from newsletter.db import make_engine, make_session_factory
from newsletter.editions import import_edition_file
from newsletter.paths import sample_data_dir

WEEK = "2020-W05"

FLOOR = (
    "INSERT INTO deliveries (edition_id, subscriber_id, status, attempts)"
    " SELECT :edition, id, 'queued', 0 FROM subscribers WHERE status = 'active' ORDER BY id"
)

RESET_EDITION = "UPDATE editions SET status = 'draft', plan_cursor = NULL, planned_count = 0"


class CountingJobs:
    """Jobs that are counted, never run: what a broker would have received."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()

    def enqueue(self, session: Session | None, name: str, **kwargs: Any) -> None:
        self.count[name] += 1


def run(n: int, chunks: list[int], admin_dsn: str) -> None:
    with BenchDatabase(admin_dsn) as db:
        engine = make_engine(db.url)
        migrate.upgrade(engine)
        load_subscribers(db.dsn, n)
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            edition = import_edition_file(session, sample_data_dir() / f"{WEEK}.yaml")
            edition_id = edition.id
        with engine.begin() as conn:
            started = time.perf_counter()
            conn.execute(text(FLOOR), {"edition": edition_id})
        floor = time.perf_counter() - started
        print(f"N = {n:,}: one INSERT … SELECT of every delivery: {floor:.2f} s")
        for chunk in chunks:
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE deliveries"))
                conn.execute(text(RESET_EDITION))
            settings = replace(Settings(database_url=db.url, secret_key="x"), plan_chunk=chunk)
            jobs = CountingJobs()
            started = time.perf_counter()
            with sessions.begin() as session:
                dispatch.start_send(session, settings, WEEK, jobs=jobs)
            first = time.perf_counter() - started
            dispatch.plan_rest(sessions, settings, edition_id, jobs)
            elapsed = time.perf_counter() - started
            with sessions() as session:
                planned = dispatch.progress(session, WEEK).total
            assert planned == n, (planned, n)
            print(
                f"  in chunks of {chunk:,}: {elapsed:.2f} s ({n / elapsed:,.0f} deliveries/s, "
                f"{elapsed / floor:.1f}x the floor); first batch queued after {first * 1000:.0f}"
                f" ms; {jobs.count['send_batch']:,} batch jobs"
            )
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.planning", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument(
        "--chunk", type=int, action="append", help="NEWSLETTER_PLAN_CHUNK (repeatable)"
    )
    parser.add_argument("--admin-dsn", default=ADMIN_DSN)
    args = parser.parse_args(argv)
    run(args.subscribers, args.chunk or [10_000], args.admin_dsn)


if __name__ == "__main__":
    main()

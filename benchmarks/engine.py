"""The send engine alone, in one process: CPU per email and emails/s of `send_batch` over N
planned deliveries into Postfix's smtp-sink, without Celery, process start-up or a second
worker competing for the machine.

python -m benchmarks.engine [--subscribers 20000] [--rounds 3] [--baseline COMMIT]

The end-to-end benchmark (benchmarks.dispatch) swings by ±10 % between runs on a shared
2-core machine; this one repeats within 2-3 µs of CPU per email, enough to tell what one
change costs. With --baseline, each round measures the baseline and this tree one after the
other, each in a fresh process on a database of its own schema, and the medians are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.database import BenchDatabase

# The measuring process imports no other module of benchmarks/: they import `newsletter`, and
# there it is the measured tree's, which may lack what they use.
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET = "benchmark-secret-key"
WEEK = "2020-W05"
PASSES = 3  # send_batch passes per process; the first, cold, is dropped


def prepare(db: BenchDatabase, subscribers: int) -> None:
    """This tree's schema, `subscribers` readers and the sample week, everybody planned: what
    every measured tree then sends (an older tree ignores the columns it does not know)."""
    from benchmarks.database import load_subscribers
    from newsletter import migrate
    from newsletter.config import Settings
    from newsletter.db import make_engine
    from newsletter.dispatch import planning
    from newsletter.editions import import_edition_file
    from newsletter.paths import sample_data_dir
    from newsletter.runtime import Runtime

    class NoJobs:
        def enqueue(self, session: object, name: str, **kwargs: object) -> None:
            pass  # one send_batch over the whole list: no batch or plan job is needed

    engine = make_engine(db.url)
    migrate.upgrade(engine)
    load_subscribers(db.dsn, subscribers)
    settings = replace(
        Settings(),
        database_url=db.url,
        secret_key=SECRET,
        batch_size=subscribers,  # everybody in the first chunk
        plan_chunk=subscribers,
    )
    runtime = Runtime(settings, _engine=engine, _jobs=NoJobs())  # type: ignore[arg-type]
    with runtime.session() as session:
        import_edition_file(session, sample_data_dir() / f"{WEEK}.yaml")
    with runtime.session() as session:
        planning.start_send(session, settings, WEEK, jobs=runtime.jobs)
    engine.dispose()


def measure(db_url: str, smtp_url: str, batch: int, passes: int = PASSES) -> dict[str, float]:
    """CPU per email and emails/s of send_batch over every planned delivery, the median of
    the warm passes, with the `newsletter` package found first on sys.path (this function
    imports nothing else of this tree: an older package may lack what the helpers use)."""
    from sqlalchemy import text

    from newsletter.config import Settings
    from newsletter.db import make_engine
    from newsletter.dispatch import sending
    from newsletter.runtime import Runtime
    from newsletter.transport import make_transport

    settings = replace(
        Settings(),
        database_url=db_url,
        smtp_url=smtp_url,
        secret_key=SECRET,
        base_url="https://news.example.org",
        from_address="Situation in Belarus <digest@news.example.org>",
    )
    runtime = Runtime(settings, _engine=make_engine(db_url))
    with runtime.session() as session:
        edition_id = int(session.execute(text("SELECT id FROM editions")).scalar_one())
        total, first_id, last_id = session.execute(
            text("SELECT count(*), min(id), max(id) FROM deliveries")
        ).one()
    # One send_batch per range of `batch` ids, as the workers get them (0: one for all).
    batch = batch or total
    # What a worker does at start, where the tree has it.
    extra = {}
    if hasattr(runtime, "sender"):
        extra["sender"] = runtime.sender
        if hasattr(sending, "warm_up"):
            sending.warm_up(runtime.sessions, runtime.sender)
    from newsletter import cli

    if hasattr(cli, "freeze_start_up"):
        cli.freeze_start_up()  # as a ready worker of that tree does
    cpu, rate = [], []
    for _ in range(passes):
        with runtime.session() as session:
            session.execute(
                text(
                    "UPDATE deliveries SET status = 'queued', attempts = 0, sent_at = NULL,"
                    " claimed_at = NULL"
                )
            )
            session.execute(text("UPDATE editions SET status = 'sending'"))
        started_cpu, started = time.process_time(), time.perf_counter()
        sent = 0
        for first in range(first_id, last_id + 1, batch):
            report = sending.send_batch(
                runtime.sessions, settings, make_transport(settings), edition_id=edition_id,
                first_id=first, last_id=first + batch - 1, **extra,
            )  # fmt: skip
            sent += report.sent
        elapsed_cpu, elapsed = time.process_time() - started_cpu, time.perf_counter() - started
        if sent != total:
            raise RuntimeError(f"sent {sent} of {total}")
        cpu.append(1e6 * elapsed_cpu / total)
        rate.append(total / elapsed)
    warm = slice(1, None) if passes > 1 else slice(None)
    return {"cpu_us": statistics.median(cpu[warm]), "rate": statistics.median(rate[warm])}


def run_tree(code: Path | None, db_url: str, smtp_url: str, batch: int) -> dict[str, Any]:
    """measure() in a fresh process whose `newsletter` package is the one in `code` (None:
    this tree's)."""
    here = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="nlengine-run-") as run_dir:
        # Only the package comes from `code` (its templates are found beside it: paths.py
        # resolves the link); run from a folder of its own, this tree is not sys.path[0].
        (Path(run_dir) / "newsletter").symlink_to((code or here) / "newsletter")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join((run_dir, str(here)))}
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.engine", "--child", db_url, smtp_url, str(batch)],
            env=env, cwd=run_dir, capture_output=True, text=True,
        )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"the measuring process failed:\n{proc.stdout}{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def labelled_trees(baseline: str | None, into: Path) -> list[tuple[str, Path | None]]:
    """("before COMMIT", its exported tree) when there is a baseline, then this tree (None)."""
    from benchmarks.dispatch import _commit, _export

    trees: list[tuple[str, Path | None]] = []
    if baseline:
        trees.append((f"before {_commit(baseline)}", _export(baseline, into)))
    trees.append((f"{'after ' if baseline else ''}{_commit('HEAD')}", None))
    return trees


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.engine", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="processes per tree (default 3)")
    parser.add_argument("--baseline", metavar="COMMIT", help="also measure COMMIT, alternating")
    parser.add_argument("--admin-dsn", default=ADMIN_DSN, help="PostgreSQL to create DBs in")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install")
    parser.add_argument(
        "--batch", type=int, default=0,
        help="send_batch per range of this many ids, as workers get them (default: one for all)",
    )  # fmt: skip
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)  # db smtp batch [passes]
    args = parser.parse_args(argv)
    if args.child:
        import newsletter

        db_url, smtp_url, batch, *passes = args.child
        result = measure(db_url, smtp_url, int(batch), *map(int, passes))
        print(json.dumps({**result, "package": str(Path(newsletter.__file__).resolve().parent)}))
        return
    from benchmarks.database import BenchDatabase
    from benchmarks.services import SmtpSink, ensure_postfix

    ensure_postfix(install=not args.no_install)
    with (
        tempfile.TemporaryDirectory(prefix="nlengine-") as tmp,
        BenchDatabase(args.admin_dsn) as db,
        SmtpSink() as sink,
    ):
        prepare(db, args.subscribers)
        trees = labelled_trees(args.baseline, Path(tmp))
        results: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in trees}
        for round_ in range(args.rounds):
            for label, code in trees:
                result = run_tree(code, db.url, sink.url, args.batch)
                results[label].append(result)
                print(
                    f"round {round_ + 1} {label}: {result['cpu_us']:.1f} µs CPU per email, "
                    f"{result['rate']:,.0f} emails/s ({result['package']})",
                    flush=True,
                )
    print()
    print(f"send_batch over {args.subscribers:,} readers in one process (medians):")
    print("| tree | CPU per email (µs) | emails/s |")
    print("|---|---:|---:|")
    for label, runs in results.items():
        cpu = statistics.median(r["cpu_us"] for r in runs)
        rate = statistics.median(r["rate"] for r in runs)
        print(f"| {label} | {cpu:.1f} | {rate:,.0f} |")


if __name__ == "__main__":
    main()

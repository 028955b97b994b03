"""End-to-end dispatch benchmark: `python -m benchmarks.dispatch --subscribers 100000`.

Each run sets up everything itself: a fresh PostgreSQL database, N active subscribers over
all 15 language sets (COPY), the sample edition, a private redis-server, real `newsletter
worker` processes and Postfix's smtp-sink. It times `newsletter send` to the last delivery
marked sent, samples the workers' CPU and memory from /proc, and measures the ceiling in the
same run: smtp-source pushing as many messages of the same size into the same sink.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg

from benchmarks.database import ADMIN_DSN, BenchDatabase, load_subscribers
from benchmarks.procs import TreeSampler, wait_for
from benchmarks.profile import Profile, PySpy
from benchmarks.services import RedisServer, SmtpSink, ensure_postfix, smtp_source_ceiling
from newsletter.paths import sample_data_dir

WEEK = "2020-W05"
SECRET = "benchmark-secret-key"
BASE_URL = "https://news.example.org"
STALL_SECONDS = 60


@dataclass
class Result:
    subscribers: int
    workers: int
    send_s: float  # `newsletter send` from spawn to exit: the first chunk planned and queued
    planned_s: float | None  # send spawned -> every reader has a delivery (plan cursor gone)
    first_s: float | None  # send spawned -> first message counted by the sink
    total_s: float  # send spawned -> last delivery marked sent
    sent: int
    failed: int
    worker_cpu_s: float
    peak_rss_mb: list[float]
    message_bytes: int
    ceiling_rate: float | None
    profile: Profile | None = None
    label: str = ""

    @property
    def rate(self) -> float:
        return self.sent / self.total_s if self.total_s else 0.0

    @property
    def steady_rate(self) -> float | None:
        """Emails/s from the first message counted to the last marked sent: the engine
        without the `send` process's start-up, which smtp-source's ceiling does not pay."""
        if self.first_s is None or self.total_s <= self.first_s:
            return None
        return self.sent / (self.total_s - self.first_s)

    @property
    def cpu_per_email_us(self) -> float:
        return 1e6 * self.worker_cpu_s / max(self.sent, 1)


@dataclass
class Options:
    workers: int
    ceiling: bool
    profile_dir: Path | None
    keep_db: bool
    admin_dsn: str
    verbose: bool
    # Source tree the measured processes (`send`, the workers) import instead of this one:
    # --baseline runs an earlier commit against the same schema, services and sink.
    code: Path | None = None
    label: str = ""
    smtp_connections: int | None = None  # NEWSLETTER_SMTP_CONNECTIONS; None: the default


def newsletter_env(db_url: str, broker_url: str, smtp_url: str, outbox: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_DATABASE_URL=db_url,
        NEWSLETTER_BROKER_URL=broker_url,
        NEWSLETTER_SMTP_URL=smtp_url,
        NEWSLETTER_SECRET_KEY=SECRET,
        NEWSLETTER_BASE_URL=BASE_URL,
        NEWSLETTER_FROM="Situation in Belarus <digest@news.example.org>",
        NEWSLETTER_OUTBOX=str(outbox),
    )
    return env


def newsletter(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one `newsletter` command; a failure stops the benchmark with its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"newsletter {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc


def start_workers(env: dict[str, str], count: int, workdir: Path) -> list[subprocess.Popen[bytes]]:
    """`count` single-process workers (Celery's solo pool); returns once all are ready."""
    procs, logs = [], []
    for i in range(count):
        log = workdir / f"worker{i}.log"
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "newsletter", "worker", "--concurrency", "1"],
                env=env,
                cwd=workdir,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def ready() -> bool:
        for proc, log in zip(procs, logs, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(f"a worker exited early:\n{log.read_text()[-3000:]}")
        return all(b" ready." in log.read_bytes() for log in logs)

    if not wait_for(ready, 60, 0.1):
        raise RuntimeError(f"workers not ready after 60 s:\n{logs[0].read_text()[-3000:]}")
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _progress(conn: psycopg.Connection) -> tuple[int, int, int, float | None]:
    """(left to send, sent, failed, epoch seconds of the last delivery marked sent)."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE d.status IN ('queued', 'sending')),"
        " count(*) FILTER (WHERE d.status = 'sent'),"
        " count(*) FILTER (WHERE d.status = 'failed'),"
        " extract(epoch FROM max(d.sent_at))"
        " FROM deliveries d JOIN editions e ON e.id = d.edition_id WHERE e.week = %s",
        (WEEK,),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), float(row[3]) if row[3] is not None else None


def _planned(conn: psycopg.Connection) -> bool:
    """Every reader has a delivery: the edition's plan cursor is gone."""
    row = conn.execute(
        "SELECT plan_cursor IS NULL FROM editions WHERE week = %s", (WEEK,)
    ).fetchone()
    return bool(row and row[0])


@dataclass
class Finish:
    sent: int
    failed: int
    last_sent: float  # epoch seconds of the last delivery marked sent
    planned_s: float | None  # seconds after the start when every delivery was planned


def wait_until_sent(db: BenchDatabase, sink: SmtpSink, n: int, start: float) -> Finish:
    """Follow the sink's counter (cheap) until it has N, then the database until none is left;
    meanwhile note when planning ended (one cheap query per 20 ms poll until then)."""
    last, last_change = -1, time.monotonic()
    planned_s: float | None = None
    with db.connect() as conn:
        while sink.received() < n:
            if planned_s is None and _planned(conn):
                planned_s = time.time() - start
            if sink.received() != last:
                last, last_change = sink.received(), time.monotonic()
            if time.monotonic() - last_change > STALL_SECONDS:
                left, sent, failed, _ = _progress(conn)
                if left == 0:
                    break  # some failed or were skipped: nothing more will arrive
                raise RuntimeError(
                    f"no progress for {STALL_SECONDS} s: sink has {sink.received()}/{n}, "
                    f"database: {left} left, {sent} sent, {failed} failed"
                )
            time.sleep(0.02)
        deadline = time.monotonic() + STALL_SECONDS
        while True:
            left, sent, failed, last_sent = _progress(conn)
            if planned_s is None and _planned(conn):
                planned_s = time.time() - start
            if left == 0 and last_sent is not None:
                return Finish(sent, failed, last_sent, planned_s)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sink has all messages but {left} deliveries are unmarked")
            time.sleep(0.1)


def run_once(n: int, opts: Options) -> Result:
    """One full run at N subscribers; every service is private and removed afterwards."""
    with (
        tempfile.TemporaryDirectory(prefix="nlbench-") as tmp,
        BenchDatabase(opts.admin_dsn, keep=opts.keep_db) as db,
        RedisServer(Path(tmp)) as redis,
        SmtpSink() as sink,
    ):
        workdir = Path(tmp)
        env = newsletter_env(db.url, redis.url, sink.url, workdir / "outbox")
        say = print if opts.verbose else (lambda *a, **k: None)
        say(f"[{n}] database {db.name}, redis :{redis.port}, smtp-sink :{sink.port}")
        # The schema and the data come from this tree; what is measured from opts.code.
        newsletter(env, "db", "upgrade", cwd=workdir)
        t = time.monotonic()
        load_subscribers(db.dsn, n)
        say(f"[{n}] {n} subscribers loaded in {time.monotonic() - t:.1f} s")
        newsletter(env, "import", str(sample_data_dir() / f"{WEEK}.yaml"), cwd=workdir)
        if opts.code is not None:
            env = {**env, "PYTHONPATH": str(opts.code)}
        if opts.smtp_connections is not None:
            env["NEWSLETTER_SMTP_CONNECTIONS"] = str(opts.smtp_connections)
        workers = start_workers(env, opts.workers, workdir)
        spy: PySpy | None = None
        try:
            with TreeSampler([w.pid for w in workers]) as sampler:
                if opts.profile_dir is not None and PySpy.available():
                    opts.profile_dir.mkdir(parents=True, exist_ok=True)
                    spy = PySpy(workers[0].pid, opts.profile_dir / f"worker-{n}.txt")
                    spy.start()
                sink.mark()
                sampler.mark()
                start = time.time()
                newsletter(env, "send", "--week", WEEK, cwd=workdir)
                send_s = time.time() - start
                say(f"[{n}] send returned after {send_s:.2f} s")
                finish = wait_until_sent(db, sink, n, start)
                profile = spy.stop() if spy else None
                spy = None
                sampler.sample()
                cpu = sum(st.cpu_since_mark() for st in sampler.stats.values())
                rss = [st.peak_rss_since_mark / 2**20 for st in sampler.stats.values()]
        finally:
            if spy is not None:
                spy.stop()
            stop_workers(workers)
        first = sink.first_after_mark - start if sink.first_after_mark else None
        size = sink.bytes_since_mark() // max(sink.received(), 1)
        ceiling = None
        if opts.ceiling:
            say(f"[{n}] ceiling: smtp-source -d -s 4 -m {n} -l {size}")
            ceiling, _ = smtp_source_ceiling(sink, n, size)
        return Result(
            subscribers=n,
            workers=opts.workers,
            send_s=send_s,
            planned_s=finish.planned_s,
            first_s=first,
            total_s=finish.last_sent - start,
            sent=finish.sent,
            failed=finish.failed,
            worker_cpu_s=cpu,
            peak_rss_mb=rss,
            message_bytes=size,
            ceiling_rate=ceiling,
            profile=profile,
            label=opts.label,
        )


def _commit(ref: str) -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", ref], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _export(ref: str, into: Path) -> Path:
    """The source tree of `ref` (git archive), importable with PYTHONPATH."""
    archive = subprocess.run(["git", "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def ceiling_only(n: int, size: int, opts: Options) -> None:
    """The parts that need no dispatch engine: database, COPY, smtp-sink and smtp-source."""
    with BenchDatabase(opts.admin_dsn, keep=opts.keep_db) as db, SmtpSink() as sink:
        with tempfile.TemporaryDirectory(prefix="nlbench-") as tmp:
            env = newsletter_env(db.url, "", sink.url, Path(tmp) / "outbox")
            env.pop("NEWSLETTER_BROKER_URL")
            newsletter(env, "db", "upgrade", cwd=Path(tmp))
        t = time.monotonic()
        load_subscribers(db.dsn, n)
        loaded = time.monotonic() - t
        rate, elapsed = smtp_source_ceiling(sink, n, size)
        print(
            f"N = {n:,}: COPY {loaded:.1f} s ({n / loaded:,.0f} rows/s); smtp-source -d -s 4 "
            f"-m {n} -l {size}: {rate:,.0f} messages/s ({elapsed:.1f} s)"
        )


HEADER = (
    "| subscribers | workers | send returns (s) | all planned (s) | first message (s) "
    "| send → all sent (s) | emails/s "
    "| smtp-source ceiling (/s) | % of ceiling | from the first message: emails/s, % "
    "| worker CPU / email (µs) "
    "| peak RSS per worker (MB) |"
)


def table_row(r: Result) -> str:
    first = f"{r.first_s:.2f}" if r.first_s is not None else "–"
    planned = f"{r.planned_s:.2f}" if r.planned_s is not None else "–"
    ceiling = f"{r.ceiling_rate:,.0f}" if r.ceiling_rate else "–"
    share = f"{100 * r.rate / r.ceiling_rate:.0f} %" if r.ceiling_rate else "–"
    steady = r.steady_rate
    after_first = f"{steady:,.0f}" if steady else "–"
    if steady and r.ceiling_rate:
        after_first += f", {100 * steady / r.ceiling_rate:.0f} %"
    rss = " / ".join(f"{m:.0f}" for m in r.peak_rss_mb)
    failed = f" ({r.failed} failed)" if r.failed else ""
    label = f" ({r.label})" if r.label else ""
    return (
        f"| {r.subscribers:,}{label} | {r.workers} | {r.send_s:.2f} | {planned} | {first} "
        f"| {r.total_s:.2f}{failed} "
        f"| {r.rate:,.0f} | {ceiling} | {share} | {after_first} | {r.cpu_per_email_us:.0f} "
        f"| {rss} |"
    )


def table(results: list[Result]) -> str:
    sep = "|" + "|".join("---" for _ in range(HEADER.count("|") - 1)) + "|"
    return "\n".join([HEADER, sep, *(table_row(r) for r in results)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.dispatch", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--subscribers", type=int, action="append",
        help="N (repeatable); default: 10000 and 100000",
    )  # fmt: skip
    parser.add_argument("--million", action="store_true", help="also run N = 1,000,000")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the smtp-source run")
    parser.add_argument(
        "--ceiling-only", type=int, metavar="SIZE",
        help="only load the database and run smtp-source with SIZE-byte messages",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="py-spy one worker, raw stacks into DIR"
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument("--admin-dsn", default=ADMIN_DSN, help="PostgreSQL to create DBs in")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument(
        "--baseline", metavar="COMMIT",
        help="also measure COMMIT (its `send` and workers) before this tree, at each N",
    )  # fmt: skip
    parser.add_argument(
        "--smtp-connections", type=int, action="append", metavar="N",
        help="NEWSLETTER_SMTP_CONNECTIONS of this tree's workers (repeatable; default: unset)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    sizes = args.subscribers or [10_000, 100_000]
    if args.million:
        sizes.append(1_000_000)
    ensure_postfix(install=not args.no_install)
    opts = Options(
        workers=args.workers,
        ceiling=not args.no_ceiling,
        profile_dir=args.profile,
        keep_db=args.keep_db,
        admin_dsn=args.admin_dsn,
        verbose=not args.quiet,
    )
    if args.ceiling_only:
        for n in sizes:
            ceiling_only(n, args.ceiling_only, opts)
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="nlbench-base-") as base:
        runs = [opts]
        if args.baseline:
            here = _commit("HEAD")
            runs = [
                replace(
                    opts,
                    code=_export(args.baseline, Path(base)),
                    label="before " + _commit(args.baseline),
                ),
                replace(opts, label="after " + here),
            ]
        connections = args.smtp_connections
        if connections:
            # The baseline runs as it was; this tree once per connection count.
            runs = [r for r in runs if r.code is not None] + [
                replace(
                    run,
                    smtp_connections=c,
                    label=f"{run.label}, {c} SMTP connection{'s' if c > 1 else ''}".lstrip(", "),
                )
                for run in runs
                if run.code is None
                for c in connections
            ]
        for n in sizes:
            for run in runs:
                results.append(run_once(n, run))
                if not args.quiet:
                    print(table_row(results[-1]), flush=True)
    print()
    print(f"{os.cpu_count()} CPUs; message size ≈ {results[-1].message_bytes:,} bytes")
    print(table(results))
    for r in results:
        if r.profile:
            print()
            print(f"profile at N = {r.subscribers:,}:")
            print("\n".join(r.profile.lines()))


if __name__ == "__main__":
    main()

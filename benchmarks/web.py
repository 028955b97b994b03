"""Web benchmark: `python -m benchmarks.web` (see README, Performance).

Each run sets up everything itself: a fresh PostgreSQL database with the sample edition sent,
pending readers to confirm and active readers to unsubscribe (one signed token each), a
private redis-server as the broker (confirmation emails are queued after commit, never sent
inside the request; the rate limits live there too), and `newsletter serve --workers N` on a
free port behind a pretend proxy (X-Forwarded-For is trusted from 127.0.0.1). Debian's `wrk`
(installed if missing) drives each page in turn; the Lua scripts give every POST its own
client address, email address or token. It prints requests/s and p50/p99 per page and worker
count, and fails (exit 1) on any error status, socket error or error line in the server log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.database import ADMIN_DSN, BenchDatabase
from benchmarks.procs import wait_for
from benchmarks.services import RedisServer, free_port, stop
from newsletter.models import new_link_salt
from newsletter.paths import sample_data_dir
from newsletter.tokens import TokenPurpose, TokenSigner

SECRET = "benchmark-secret-key"
BASE_URL = "https://news.example.org"
WEEK = "2020-W05"
LUA = Path(__file__).parent / "wrk"
# The figures issue 14 measured for listmonk on this machine (wrk -t2 -c32 -d8s).
LISTMONK = {"archive page": (1756, 64.0), "form": (977, 171.0)}
ERROR_LINE = re.compile(r"ERROR|Traceback|CRITICAL|\" 5\d\d ")


@dataclass(frozen=True)
class Page:
    name: str
    script: str
    path: str
    tokens: str | None = None  # "confirm" or "unsubscribe": the token list it takes from
    body: str = ""

    @property
    def is_get(self) -> bool:
        return self.script == "get.lua"


PAGES = (
    Page("static css", "get.lua", "/static/site.css"),
    Page("archive page", "get.lua", f"/en/archive/{WEEK}"),
    Page("archive index", "get.lua", "/en/archive/"),
    Page("form", "get.lua", "/en/"),
    Page("subscribe", "subscribe.lua", "/en/subscribe"),
    Page("confirm", "tokens.lua", "/confirm/", tokens="confirm"),
    Page(
        "one-click unsubscribe",
        "tokens.lua",
        "/unsubscribe/",
        tokens="unsubscribe",
        body="List-Unsubscribe=One-Click",
    ),
)


@dataclass
class Result:
    page: str
    workers: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    tokens_reused: bool = False

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def ensure_wrk(install: bool) -> str:
    """wrk from PATH, or from Debian (apt-get install wrk) unless told not to install."""
    found = shutil.which("wrk")
    if found:
        return found
    if not install:
        raise SystemExit("wrk is missing: install the Debian package `wrk` (or drop --no-install)")
    print("installing wrk (Debian package)...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk was installed but is not on PATH")
    return found


def newsletter_env(db_url: str, broker_url: str, outbox: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_DATABASE_URL=db_url,
        NEWSLETTER_BROKER_URL=broker_url,
        NEWSLETTER_SECRET_KEY=SECRET,
        NEWSLETTER_BASE_URL=BASE_URL,
        NEWSLETTER_FROM="Situation in Belarus <digest@news.example.org>",
        NEWSLETTER_OUTBOX=str(outbox),
        FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    return env


def prepare(db: BenchDatabase, env: dict[str, str], workdir: Path) -> None:
    """Migrate, import the sample week and mark it sent (as a finished send leaves it)."""
    for args in (["db", "upgrade"], ["import", str(sample_data_dir() / f"{WEEK}.yaml")]):
        subprocess.run(
            [sys.executable, "-m", "newsletter", *args],
            env=env,
            cwd=workdir,
            check=True,
            capture_output=True,
        )
    with db.connect() as conn:
        conn.execute("UPDATE editions SET status = 'sent', finished_at = now()")


def make_readers(db: BenchDatabase, status: str, prefix: str, count: int) -> list[tuple[int, int]]:
    """COPY `count` readers with this status; their (id, link salt)."""
    now = datetime.now(UTC).isoformat()
    confirmed = now if status == "active" else "\\N"
    columns = "email, languages, status, created_at, updated_at, confirmed_at, link_salt"
    with db.connect() as conn, conn.cursor() as cur:
        with cur.copy(f"COPY subscribers ({columns}) FROM STDIN") as copy:
            rows = (
                f"{prefix}{i}@bench.example\ten\t{status}\t{now}\t{now}\t{confirmed}"
                f"\t{new_link_salt()}\n"
                for i in range(count)
            )
            copy.write("".join(rows).encode())
        cur.execute(
            "SELECT id, link_salt FROM subscribers WHERE email LIKE %s ORDER BY id",
            (f"{prefix}%",),
        )
        return [(int(i), int(s)) for i, s in cur.fetchall()]


def token_file(
    db: BenchDatabase, purpose: TokenPurpose, count: int, run: int, folder: Path
) -> Path:
    """Readers of their own for one run, and a file of their tokens, one per line."""
    status = "pending" if purpose is TokenPurpose.confirm else "active"
    readers = make_readers(db, status, f"{purpose.value}-{run}-", count)
    with db.connect() as conn:
        edition_id = conn.execute("SELECT id FROM editions").fetchone()[0]  # type: ignore[index]
    signer = TokenSigner(SECRET)
    edition = edition_id if purpose is TokenPurpose.unsubscribe else None
    path = folder / f"{purpose.value}-{run}.txt"
    path.write_text("".join(f"{signer.make(purpose, i, edition, salt=s)}\n" for i, s in readers))
    return path


class Server:
    """`newsletter serve --workers N` on a free port, its output in a file."""

    def __init__(self, env: dict[str, str], workers: int, workdir: Path, access_log: bool):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{workers}.log"
        args = ["--port", str(self.port), "--workers", str(workers)]
        if not access_log:
            args.append("--no-access-log")
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "newsletter", "serve", *args],
                env=env,
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def __enter__(self) -> Server:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise SystemExit(f"newsletter serve exited:\n{self.log.read_text()}")
            try:
                return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        if not wait_for(up, 120, 0.2):
            stop(self.proc)  # type: ignore[arg-type]
            raise SystemExit(f"newsletter serve did not come up in 120 s:\n{self.log.read_text()}")
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)  # type: ignore[arg-type]

    def error_lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if ERROR_LINE.search(line)]


def run_wrk(
    wrk: str,
    server: Server,
    page: Page,
    opts: argparse.Namespace,
    extra_env: dict[str, str],
    duration: int,
) -> dict[str, int]:
    env = {
        **os.environ,
        "BENCH_LUA_DIR": str(LUA),
        "BENCH_THREADS": str(min(opts.threads, opts.post_connections)),
        "BENCH_PATH": page.path,
        "BENCH_BODY": page.body,
        **extra_env,
    }
    connections = opts.connections if page.is_get else opts.post_connections
    command = [
        wrk,
        f"-t{min(opts.threads, connections)}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA / page.script),
        server.url + (page.path if page.tokens is None else "/"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no report:\n{done.stdout}\n{done.stderr}")
    return json.loads(line[len("BENCH ") :])  # type: ignore[no-any-return]


def measure(
    wrk: str, server: Server, page: Page, opts: argparse.Namespace, extra: dict[str, str]
) -> dict[str, int]:
    """wrk's report for one page. A run in which no answer came back at all (a machine so
    loaded that one request took longer than the whole run) is made again, twice as long,
    up to 8 times --duration: a figure needs at least one answer."""
    duration = opts.duration
    report = run_wrk(wrk, server, page, opts, extra, duration)
    while report["requests"] == 0 and duration < 8 * opts.duration:
        duration *= 2
        print(
            f"  no answer from {page.name} in {duration // 2} s: measuring again for {duration} s",
            flush=True,
        )
        report = run_wrk(wrk, server, page, opts, extra, duration)
    return report


def warm_up(server: Server, tokens: dict[str, Path], run: int, posts: int) -> None:
    """Each process renders its pages once and opens its connections before timing.

    The POSTs too: a worker's first ones connect to the broker, open the database
    connections of its pool and compile their statements (tens of milliseconds each).
    Without this the first second of each POST's run measured that, once per process, and
    its p99 with it. The warm-up uses addresses, client addresses and tokens the timed runs
    do not use (the last tokens of each list; the Lua scripts start at the first)."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(20):
            for page in PAGES:
                if page.is_get:
                    http.get(page.path).raise_for_status()
    confirm = tokens["confirm"].read_text().split()[-posts:] if posts else []
    unsubscribe = tokens["unsubscribe"].read_text().split()[-posts:] if posts else []

    def post(n: int) -> None:
        # A new connection each time, so that every worker process gets some of them.
        form = {"email": f"warm-{run}-{n}@example.org", "languages": "en", "first": "en"}
        ip = {"X-Forwarded-For": f"192.0.{run % 256}.{n % 256}"}
        one_click = {"List-Unsubscribe": "One-Click"}
        for path, data, headers in (
            ("/en/subscribe", form, ip),
            (f"/confirm/{confirm[n]}", {}, {}),
            (f"/unsubscribe/{unsubscribe[n]}", one_click, {}),
        ):
            httpx.post(server.url + path, data=data, headers=headers, timeout=30).raise_for_status()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(post, range(min(posts, len(confirm), len(unsubscribe)))))


def bench_workers(
    wrk: str,
    workers: int,
    run: int,
    db: BenchDatabase,
    env: dict[str, str],
    workdir: Path,
    opts: argparse.Namespace,
) -> tuple[list[Result], list[str]]:
    tokens = {
        kind: token_file(db, TokenPurpose(kind), opts.tokens, run, workdir)
        for kind in ("confirm", "unsubscribe")
    }
    results = []
    with Server(env, workers, workdir, opts.access_log) as server:
        warm_up(server, tokens, run, opts.warm_posts)
        for page in opts.pages:
            extra = {"BENCH_RUN": str(run)}
            if page.tokens:
                extra["BENCH_TOKENS"] = str(tokens[page.tokens])
            report = measure(wrk, server, page, opts, extra)
            errors = (
                sum(
                    report[k]
                    for k in ("status_errors", "connect_errors", "read_errors", "write_errors")
                )
                + report["timeouts"]
            )
            result = Result(
                page=page.name,
                workers=workers,
                requests=report["requests"],
                seconds=report["duration_us"] / 1e6,
                p50_ms=report["p50_us"] / 1000,
                p99_ms=report["p99_us"] / 1000,
                errors=errors,
                tokens_reused=page.tokens is not None and report["requests"] > opts.tokens,
            )
            results.append(result)
            if not opts.quiet:
                print(
                    f"  {workers} worker(s) {page.name:<22} {result.rate:>8,.0f} req/s  "
                    f"p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms  "
                    f"errors {errors}",
                    flush=True,
                )
            time.sleep(opts.pause)
        errors_logged = server.error_lines()
    return results, errors_logged


def table(results: list[Result], worker_counts: list[int], pages: list[Page]) -> str:
    head = "| page | " + " | ".join(
        f"{w} worker{'s' if w > 1 else ''}: req/s, p50 / p99 ms" for w in worker_counts
    )
    lines = [head + " |", "|---|" + "---:|" * len(worker_counts)]
    for page in pages:
        cells = []
        for w in worker_counts:
            r = next(x for x in results if x.page == page.name and x.workers == w)
            mark = " (tokens reused)" if r.tokens_reused else ""
            err = f", {r.errors} errors" if r.errors else ""
            cells.append(f"{r.rate:,.0f}, {r.p50_ms:.1f} / {r.p99_ms:.1f}{mark}{err}")
        lines.append(f"| {page.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(results: list[Result], worker_counts: list[int]) -> list[str]:
    """The targets of issue 14, each with its figure."""
    lines = []
    for w in worker_counts:
        by = {r.page: r for r in results if r.workers == w}
        ceiling = by["static css"].rate if "static css" in by else 0.0
        for name in ("archive page", "form"):
            if name not in by:
                continue
            share = by[name].rate / ceiling if ceiling else 0.0
            rate, p99 = LISTMONK[name]
            lines.append(
                f"{w} worker(s): {name} at {share:.0%} of the static ceiling (target >= 80%), "
                f"{by[name].rate:,.0f} req/s vs listmonk's {rate:,} (p99 {by[name].p99_ms:.0f} "
                f"vs {p99:.0f} ms)"
            )
        slow = [r.page for r in by.values() if r.p99_ms >= 100]
        lines.append(f"{w} worker(s): pages with p99 >= 100 ms: {', '.join(slow) or 'none'}")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.web", description=__doc__)
    parser.add_argument("--workers", default="1,2", help="worker counts to run (default 1,2)")
    parser.add_argument("--duration", type=int, default=8, help="seconds per page (8)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument(
        "--post-connections",
        type=int,
        default=4,
        help="wrk connections for the POSTs (4: four submissions in flight at every instant)",
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--tokens", type=int, default=20_000, help="confirm/unsubscribe tokens per run"
    )
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between pages")
    parser.add_argument(
        "--warm-posts",
        type=int,
        default=40,
        help="subscribes, confirms and unsubscribes of each kind before timing (40)",
    )
    parser.add_argument(
        "--pages",
        default=",".join(p.name for p in PAGES),
        help="pages to measure, in this order (comma-separated names; default all)",
    )
    parser.add_argument("--access-log", action="store_true", help="serve with its access log")
    parser.add_argument("--admin-dsn", default=ADMIN_DSN, help="PostgreSQL to make the DB in")
    parser.add_argument("--no-install", action="store_true", help="never apt-get wrk")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true", help="only the table")
    opts = parser.parse_args(argv)
    opts.worker_counts = [int(w) for w in opts.workers.split(",") if w.strip()]
    by_name = {p.name: p for p in PAGES}
    names = [n.strip() for n in opts.pages.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_name]
    if unknown or not names or len(set(names)) != len(names):
        parser.error(f"--pages takes each name at most once, from: {', '.join(by_name)}")
    opts.pages = [by_name[n] for n in names]
    if opts.duration < 1 or min(opts.connections, opts.post_connections) < 1:
        parser.error("need --duration >= 1 and at least one connection")
    if not opts.worker_counts or min(opts.worker_counts) < 1:
        parser.error("--workers needs one or more counts, like 1,2")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    wrk = ensure_wrk(not opts.no_install)
    results: list[Result] = []
    errors_logged: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="nlbench-web-") as tmp,
        BenchDatabase(opts.admin_dsn, keep=opts.keep_db) as db,
        RedisServer(Path(tmp)) as redis,
    ):
        workdir = Path(tmp)
        env = newsletter_env(db.url, redis.url, workdir / "outbox")
        prepare(db, env, workdir)
        for run, workers in enumerate(opts.worker_counts):
            got, logged = bench_workers(wrk, workers, run, db, env, workdir, opts)
            results += got
            errors_logged += logged
    command = (
        f"wrk -t{opts.threads} -d{opts.duration}s, -c{opts.connections} for GETs and "
        f"-c{opts.post_connections} for POSTs, access log {'on' if opts.access_log else 'off'}"
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{command}; load average at the end {load} on {os.cpu_count()} cores\n")
    print(table(results, opts.worker_counts, opts.pages))
    print()
    for line in verdict(results, opts.worker_counts):
        print(line)
    failed = [r for r in results if r.errors]
    for r in failed:
        print(f"FAILED: {r.page} with {r.workers} worker(s): {r.errors} errors", file=sys.stderr)
    for line in errors_logged[:20]:
        print(f"FAILED: the server logged: {line}", file=sys.stderr)
    return 1 if failed or errors_logged else 0


if __name__ == "__main__":
    sys.exit(main())

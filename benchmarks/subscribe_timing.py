"""Does the subscribe answer take longer for some addresses than for others?

Posts the form for new, active, pending and erased addresses in shuffled order against a real
`serve`-like process (uvicorn, the rate limits lifted so that every request does the whole
work) and prints, per kind, the median answer time and its spread, client side.

python -m benchmarks.subscribe_timing                          # embedded: SQLite, in-process jobs
python -m benchmarks.subscribe_timing --postgresql --broker    # PostgreSQL + a private Redis
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from benchmarks.services import RedisServer, free_port, stop

KINDS = ("new", "active", "pending", "erased")


def serve(port: int) -> None:
    """The web app as `newsletter serve` builds it, with limits no benchmark reaches."""
    import uvicorn

    from newsletter.config import Settings
    from newsletter.web.app import create_app
    from newsletter.web.ratelimit import Limit, SubscribeLimits

    app = create_app(Settings.from_env())
    big = Limit(10**9, 3600)
    app.state.subscribe_limits = SubscribeLimits(per_ip=big, per_address=big, confirmations=big)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", server_header=False)


def _prepare(env: dict[str, str], count: int) -> None:
    """Migrate; add `count` active and `count` pending readers, and erase `count` more."""
    from newsletter import migrate, subscriptions
    from newsletter.config import Settings
    from newsletter.runtime import Runtime

    runtime = Runtime(Settings.from_env(env))
    migrate.upgrade(runtime.engine)
    with runtime.session() as session:
        for i in range(count):
            for kind, confirmed in (("active", True), ("pending", False), ("erased", True)):
                subscriptions.add_subscriber(
                    session,
                    runtime.settings.secret_key,
                    f"{kind}{i}@example.org",
                    "be",
                    confirmed=confirmed,
                )
            session.flush()
            subscriptions.forget(session, runtime.settings.secret_key, f"erased{i}@example.org")
    runtime.dispose()


def _measure(url: str, count: int, gap: float, warmup: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    rounds = [(i, kind) for i in range(count) for kind in KINDS]
    random.Random(5).shuffle(rounds)
    with httpx.Client(base_url=url, timeout=30) as client:
        for n, (i, kind) in enumerate(rounds):
            address = f"{kind}{i}@example.org"
            form = {"email": address, "languages": ["be"], "name": "Reader"}
            started = time.perf_counter()
            response = client.post("/be/subscribe", data=form)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, (address, response.status_code)
            if n >= warmup:
                times[kind].append(elapsed * 1e3)
            time.sleep(gap)  # let the confirmation of the previous request go out
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=150, help="requests per kind")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between requests")
    parser.add_argument("--postgresql", action="store_true", help="a throwaway PostgreSQL db")
    parser.add_argument("--broker", action="store_true", help="a private Redis as the broker")
    args = parser.parse_args()

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nl-timing-")))
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        env.update(
            NEWSLETTER_SECRET_KEY="timing-benchmark-secret-key",
            NEWSLETTER_OUTBOX=str(folder / "outbox"),
            NEWSLETTER_DATABASE_URL=f"sqlite:///{folder / 'newsletter.db'}",
            NEWSLETTER_BASE_URL="https://news.example.org",
        )
        if args.postgresql:
            from benchmarks.database import BenchDatabase

            env["NEWSLETTER_DATABASE_URL"] = stack.enter_context(BenchDatabase()).url
        if args.broker:
            env["NEWSLETTER_BROKER_URL"] = stack.enter_context(RedisServer(folder)).url
        _prepare(env, args.count + 1)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.subscribe_timing", "--serve", str(port)],
            env=env,
        )
        stack.callback(stop, server)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        times = _measure(url, args.count, args.gap, warmup=len(KINDS) * 5)

    mode = ("PostgreSQL" if args.postgresql else "SQLite") + (
        " + Redis broker" if args.broker else ", jobs in process"
    )
    print(f"subscribe answer, {mode}, {args.count} requests per kind (shuffled), ms:")
    print(f"{'address':>8}  {'median':>7}  {'p10':>6}  {'p90':>6}  {'mean':>6}")
    for kind, values in times.items():
        q = statistics.quantiles(values, n=10)
        print(
            f"{kind:>8}  {statistics.median(values):7.2f}  {q[0]:6.2f}  {q[-1]:6.2f}"
            f"  {statistics.fmean(values):6.2f}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    else:
        main()

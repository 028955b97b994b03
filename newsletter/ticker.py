"""Running the tick in a process that has no Celery beat: `serve` and `beat` without a broker.

Each such process runs a Ticker; the lease in the database (newsletter.scheduler) lets one
of them tick at a time. The tick itself runs on its own thread: in the embedded mode it may
send a whole edition, and the lease is kept meanwhile by the loop that took it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait

from newsletter import scheduler
from newsletter.jobs import run_job
from newsletter.models import utcnow
from newsletter.runtime import Runtime

log = logging.getLogger(__name__)

# A holder that stops renewing (killed, hung) loses the lease after three intervals, and
# never sooner than 10 s: a busy holder (an embedded send, a SQLite write lock) renews late.
LEASE_INTERVALS = 3
MIN_LEASE = 10.0


class Ticker:
    """Takes (and keeps) the tick lease every `every` seconds and, while holding it, ticks."""

    def __init__(self, runtime: Runtime, every: float | None = None) -> None:
        self.runtime = runtime
        self.every = every or runtime.settings.tick_every
        # Unique even for two tickers in one process (tests) or a reused pid.
        self.holder = f"{scheduler.this_process()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ticks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tick")
        self._running: Future[None] | None = None
        self.holding = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ticker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop taking the lease, and give it up once the tick under way ends; one still at
        work after 5 s (an embedded send) keeps it until it runs out, so nobody ticks beside
        it meanwhile. The process exits once that tick ends."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._ticks.shutdown(wait=False, cancel_futures=True)
        if self._running is not None:
            wait([self._running], timeout=5)  # most ticks take a moment
        idle = self._running is None or self._running.done()
        if self.holding and idle:
            try:
                with self.runtime.session() as session:
                    scheduler.release_lease(session, self.holder)
            except Exception:  # the lease runs out by itself
                log.warning("could not release the tick lease", exc_info=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # the database away: try again at the next interval
                log.exception("scheduler: could not take the tick lease")
                self.holding = False
            self._stop.wait(self.every)

    def step(self) -> None:
        """One interval: renew or take the lease, and start a tick unless one is running."""
        busy = self._running is not None and not self._running.done()
        with self.runtime.session() as session:
            now = utcnow()
            lease = max(self.every * LEASE_INTERVALS, MIN_LEASE)
            held = scheduler.take_lease(session, self.holder, now, lease)
            if held and busy:
                # The last tick is still at work (an embedded send): the scheduler runs.
                scheduler.record_tick(session, now)
        if held != self.holding:
            log.info("scheduler: %s the tick lease (%s)", "took" if held else "lost", self.holder)
        self.holding = held
        if held and (self._running is None or self._running.done()):
            self._running = self._ticks.submit(self._tick)

    def _tick(self) -> None:
        try:
            report = run_job(self.runtime, "tick", {})
        except Exception:
            log.exception("scheduler: the tick failed")
            return
        if report:
            log.info("tick: %s", report)

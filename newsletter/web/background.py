"""Work that must not shape an answer: handed, once the answer has been sent, to one thread
the app owns.

The subscribe answer must take as long for a new address as for a known one. Sending the
confirmation (embedded mode: rendering, inlining, the outbox or SMTP) or publishing its job
(broker mode: a round trip to Redis) would add time only when an email is due, and even on a
thread of its own it competes for the interpreter while the answer is being written. So the
route attaches `later(...)` to its response as a background task: Starlette runs it after the
last byte is sent, and it only queues the work here. The request's session has committed
before the response went out (SessionDep), so the row the job looks for exists; if the
process stops before the job runs, the tick finds the pending subscriber.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from starlette.background import BackgroundTask

log = logging.getLogger(__name__)


class AfterResponse:
    """One worker thread per app; built by the app, closed when the app stops."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None  # started on first use, again after close
        self._lock = threading.Lock()
        self._pending: set[Future[None]] = set()

    def later(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> BackgroundTask:
        """A response background task that queues fn(*args, **kw) here once the answer is out."""

        # A coroutine, so Starlette calls it on the event loop: queueing never blocks, and a
        # plain function would first be handed to the request thread pool and back.
        async def queue() -> None:
            self.submit(fn, *args, **kw)

        return BackgroundTask(queue)

    def submit(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
        def run() -> None:
            try:
                fn(*args, **kw)
            except Exception:
                # The rows are committed: the tick finds what a failed job left undone.
                log.exception("background work %s failed", getattr(fn, "__name__", fn))

        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="after-response")
            future = self._executor.submit(run)
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until everything handed over so far has run (tests, and a stopping app)."""
        with self._lock:
            pending = list(self._pending)
        wait(pending, timeout=timeout)

    def close(self) -> None:
        """Finish what was handed over, then stop the thread (a later submit starts another:
        an app may be started again, as tests do)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

"""Keeping claims alive: renewed by time from a thread while a stretch is on the wire, and
writes that wait for the database to come back instead of dropping a stretch's results."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from newsletter.dispatch import store

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a worker holds a stretch's results while the database is away (seconds).
DATABASE_PATIENCE = 3600.0


def patiently(
    sessions: sessionmaker[Session],
    work: Callable[[Session], T],
    *,
    patience: float = DATABASE_PATIENCE,
    max_delay: float = 5.0,
    what: str = "write",
) -> T:
    """Run `work` in one transaction, again and again while the database cannot be reached.

    The results of messages already on the wire exist only in this process: losing them
    would send those messages again, so they wait for the database (up to `patience`),
    trying at least every `max_delay` seconds so that they are written soon after it is back.
    """
    deadline = time.monotonic() + patience
    delay = min(0.2, max_delay)
    while True:
        try:
            with sessions.begin() as session:
                return work(session)
        except DBAPIError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("database unavailable for %s, retrying in %.1fs: %s", what, delay, exc)
            time.sleep(delay)
            delay = min(delay * 2, max_delay)


class ClaimKeeper:
    """Renews the claims a batch holds, and touches its edition, every `every` seconds from a
    thread of its own: however long a stretch takes on the wire, the tick never mistakes
    this worker for a dead one. Use as a context manager around the batch."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        edition_id: int,
        every: float,
        now: Callable[[], datetime],
    ) -> None:
        self.sessions = sessions
        self.edition_id = edition_id
        self.every = every
        self.now = now
        self._held: dict[int, int] = {}  # delivery id -> its claim's token
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.renewals = 0  # successful renewals, for tests and logs

    def hold(self, tokens: store.Tokens) -> None:
        with self._lock:
            self._held.update(tokens)

    def let_go(self, delivery_ids: Iterable[int]) -> None:
        with self._lock:
            for delivery_id in delivery_ids:
                self._held.pop(delivery_id, None)

    def renew(self) -> bool:
        """One renewal; False when the database could not be reached (tried again later)."""
        with self._lock:
            held = dict(self._held)
        try:
            with self.sessions.begin() as session:
                at = self.now()
                if held:
                    store.renew(session, held, at)
                store.touch(session, self.edition_id, at)
        except DBAPIError as exc:
            log.warning("could not renew %d claims: %s", len(held), exc)
            return False
        self.renewals += 1
        return True

    def _run(self) -> None:
        wait = self.every
        while not self._stop.wait(wait):
            # After a failure, try again sooner: the first moment the database is back counts.
            wait = self.every if self.renew() else min(self.every, 0.5)

    def __enter__(self) -> ClaimKeeper:
        self._thread = threading.Thread(
            target=self._run, name=f"claims-{self.edition_id}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

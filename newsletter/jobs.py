"""How the edges hand work to workers: jobs are published only after the session commits.

A job is a name and a few scalar arguments (ids). `InProcessJobs` runs them in this process
(the embedded mode, no broker); `CeleryJobs` publishes them to the broker by task name. Either
way nothing is handed over until the database has the rows the job will look for.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from newsletter import dispatch
from newsletter.dispatch.handoff import JobArg, Jobs

if TYPE_CHECKING:
    from newsletter.runtime import Runtime

log = logging.getLogger(__name__)

TASK_PREFIX = "newsletter."  # Celery task name = TASK_PREFIX + job name

Publish = Callable[[str, dict[str, JobArg]], None]

_PENDING_KEY = "newsletter.jobs.pending"


def _check(name: str) -> None:
    if name not in JOBS:
        raise ValueError(f"unknown job {name!r}")


Pending = tuple[SessionTransaction | None, Publish, str, dict[str, JobArg]]


def _defer(session: Session | None, publish: Publish, name: str, kwargs: dict[str, JobArg]) -> None:
    """Publish now, or after the session's outermost commit; a rollback of the transaction
    (or savepoint) the job was enqueued in drops it."""
    if session is None:
        publish(name, kwargs)
        return
    pending: list[Pending] | None = session.info.get(_PENDING_KEY)
    if pending is None:
        pending = session.info[_PENDING_KEY] = []
        event.listen(session, "after_commit", _publish_pending)
        event.listen(session, "after_soft_rollback", _drop_pending)
    innermost = session.get_nested_transaction() or session.get_transaction()
    pending.append((innermost, publish, name, kwargs))


def _publish_pending(session: Session) -> None:
    # after_commit also fires when a savepoint is released: the rows are not committed yet
    # (and on SQLite the enclosing transaction still holds the write lock a job would need).
    if session.in_nested_transaction():
        return
    pending = session.info.get(_PENDING_KEY) or []
    jobs, pending[:] = list(pending), []
    for _transaction, publish, name, kwargs in jobs:
        publish(name, kwargs)


def _drop_pending(session: Session, rolled_back: SessionTransaction) -> None:
    """Forget the jobs enqueued inside the transaction or savepoint that was rolled back."""
    pending = session.info.get(_PENDING_KEY)
    if pending:
        pending[:] = [job for job in pending if not _inside(job[0], rolled_back)]


def _inside(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    if outer.parent is None:
        return True  # the outermost transaction: everything goes
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


class InProcessJobs:
    """Runs jobs in this process, one after another, after the enqueuing session commits.

    A job that enqueues more jobs does not recurse: they join the queue being drained.
    """

    def __init__(self, runner: Callable[[str, dict[str, JobArg]], None]) -> None:
        self.runner = runner
        self._local = threading.local()

    def enqueue(self, session: Session | None, name: str, **kwargs: JobArg) -> None:
        _check(name)
        _defer(session, self._run, name, kwargs)

    def _run(self, name: str, kwargs: dict[str, JobArg]) -> None:
        queue: deque[tuple[str, dict[str, JobArg]]] | None = getattr(self._local, "queue", None)
        if queue is not None:  # already draining in this thread
            queue.append((name, kwargs))
            return
        queue = self._local.queue = deque([(name, kwargs)])
        try:
            while queue:
                job, args = queue.popleft()
                try:
                    self.runner(job, args)
                except Exception:
                    # The caller's transaction is committed; the tick retries what is left.
                    log.exception("in-process job %s(%s) failed", job, args)
        finally:
            self._local.queue = None


class CeleryJobs:
    """Publishes jobs to Celery by task name (no import of the tasks module needed)."""

    def __init__(self, app: Any, *, queue: str | None = None) -> None:
        self.app = app
        self.queue = queue

    def enqueue(self, session: Session | None, name: str, **kwargs: JobArg) -> None:
        _check(name)
        _defer(session, self._publish, name, kwargs)

    def _publish(self, name: str, kwargs: dict[str, JobArg]) -> None:
        try:
            self.app.send_task(TASK_PREFIX + name, kwargs=kwargs, queue=self.queue)
        except Exception:
            # The rows are committed: a beat tick re-enqueues sends that no task holds.
            log.exception("could not publish job %s(%s) to the broker", name, kwargs)


@dataclass(frozen=True)
class RetryPolicy:
    """How a job that did not finish is tried again; declared once per job (JOBS), read by
    the Celery tasks and documented for the in-process runner, where the tick does it."""

    on: tuple[type[BaseException], ...] = ()  # exceptions after which the task is retried
    max_retries: int | None = 0  # retries of one task (None: no limit)
    first: float = 1.0  # seconds before the first retry, doubled each time...
    cap: float = 3600.0  # ...up to this
    # The job's result may ask to run again after some seconds (send_batch: a postponed
    # delivery of its range falls due then).
    come_back: Callable[[Any], float | None] | None = None
    recovery: str = ""  # what the tick does when the job is lost altogether

    def countdown(self, retries: int) -> float:
        return min(self.cap, self.first * 2**retries)


@dataclass(frozen=True)
class Job:
    name: str
    handler: Callable[[Runtime, dict[str, Any]], Any]
    retry: RetryPolicy


def _send_batch(runtime: Runtime, kwargs: dict[str, Any]) -> Any:
    return dispatch.send_batch(
        runtime.sessions,
        runtime.settings,
        runtime.transport,
        edition_id=int(kwargs["edition_id"]),
        first_id=int(kwargs["first_id"]),
        last_id=None if kwargs.get("last_id") is None else int(kwargs["last_id"]),
        sender=runtime.sender,
    )


def _plan(runtime: Runtime, kwargs: dict[str, Any]) -> Any:
    return dispatch.plan_rest(
        runtime.sessions, runtime.settings, int(kwargs["edition_id"]), runtime.jobs
    )


def _send_confirmation(runtime: Runtime, kwargs: dict[str, Any]) -> Any:
    return dispatch.send_confirmation(
        runtime.sessions, runtime.settings, runtime.transport, int(kwargs["subscriber_id"])
    )


def _tick(runtime: Runtime, kwargs: dict[str, Any]) -> Any:
    with runtime.session() as session:
        return dispatch.tick(session, runtime.settings, runtime.jobs)


def _retry_in(report: Any) -> float | None:
    return None if report is None else report.retry_in


def _database_errors() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import DBAPIError

    return (DBAPIError,)


# The one registry: every job's name, handler and retry policy.
JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job(
            "send_batch",
            _send_batch,
            RetryPolicy(
                max_retries=None,
                come_back=_retry_in,
                recovery="stale claims are queued again (seen stale twice); the batches of an "
                "edition untouched for NEWSLETTER_STALE_AFTER are enqueued again",
            ),
        ),
        Job(
            "plan",
            _plan,
            RetryPolicy(
                on=_database_errors(),
                max_retries=10,
                first=5.0,
                cap=60.0,
                recovery="the planning of an idle edition with a plan cursor is enqueued again",
            ),
        ),
        Job(
            "send_confirmation",
            _send_confirmation,
            RetryPolicy(
                recovery="kept in the subscriber's row, afresh for each request promised one: "
                "a confirmation not sent is queued again "
                "30 s, 1 min, 2 min... (at most hourly) after each failure, and one whose job "
                "was lost after NEWSLETTER_STALE_AFTER, until the link expires (7 days)",
            ),
        ),
        Job(
            "tick",
            _tick,
            RetryPolicy(recovery="none needed: beat (or `serve`) runs the next one"),
        ),
    )
}
JOB_NAMES = frozenset(JOBS)


def run_job(runtime: Runtime, name: str, kwargs: dict[str, Any]) -> Any:
    """Run one job by name in this process: what a worker task and InProcessJobs both call."""
    job = JOBS.get(name)
    if job is None:
        raise ValueError(f"unknown job {name!r}")
    return job.handler(runtime, kwargs)


__all__ = [
    "JOBS",
    "JOB_NAMES",
    "TASK_PREFIX",
    "CeleryJobs",
    "InProcessJobs",
    "Job",
    "JobArg",
    "Jobs",
    "RetryPolicy",
    "run_job",
]

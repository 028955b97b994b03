"""Thin Celery tasks: each re-reads its rows through a plain function of newsletter.dispatch."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task

from newsletter.errors import TemporaryDeliveryError
from newsletter.jobs import TASK_PREFIX, CeleryJobs, JobArg, run_job
from newsletter.runtime import Runtime

log = logging.getLogger(__name__)

_runtimes: dict[int, Runtime] = {}


def runtime_for(app: Celery) -> Runtime:
    """One Runtime per app and process; its jobs publish through the same app."""
    runtime = _runtimes.get(id(app))
    if runtime is None:
        settings = app.newsletter_settings  # type: ignore[attr-defined]
        runtime = _runtimes[id(app)] = Runtime(settings, _jobs=CeleryJobs(app))
    return runtime


def warm_up(app: Celery) -> None:
    """Ready before the first task: the message code, compiled templates and catalogs, a
    started premailer and a database connection. A prefork pool's children inherit all but
    the connection, which they must not share."""
    import newsletter.messages  # noqa: F401
    from newsletter.rendering import warm_up as warm_up_rendering

    warm_up_rendering()
    runtime_for(app).engine.connect().close()


def forget_runtimes() -> None:
    for runtime in _runtimes.values():
        runtime.engine.dispose(close=False)
    _runtimes.clear()


def register_tasks(app: Celery) -> None:
    """Add the jobs to `app` under the names CeleryJobs publishes."""

    @app.task(name=TASK_PREFIX + "plan")
    def plan(**kwargs: JobArg) -> None:
        # Each chunk commits on its own; should this task be lost, the tick starts another.
        run_job(runtime_for(app), "plan", kwargs)

    @app.task(name=TASK_PREFIX + "send_batch", bind=True, max_retries=None)
    def send_batch(self: Task, **kwargs: JobArg) -> None:
        report = run_job(runtime_for(self.app), "send_batch", kwargs)
        if report.retry_in is not None:
            # Temporary failures wait in the database; come back when they are due.
            # Should this message be lost, the beat tick re-enqueues the batch.
            raise self.retry(countdown=max(1.0, report.retry_in))

    @app.task(name=TASK_PREFIX + "send_confirmation", bind=True, max_retries=8)
    def send_confirmation(self: Task, **kwargs: JobArg) -> None:
        try:
            run_job(runtime_for(self.app), "send_confirmation", kwargs)
        except TemporaryDeliveryError as exc:
            raise self.retry(exc=exc, countdown=min(3600, 30 * 2**self.request.retries)) from exc

    @app.task(name=TASK_PREFIX + "tick", bind=True)
    def tick(self: Task, **kwargs: Any) -> None:
        report = run_job(runtime_for(self.app), "tick", kwargs)
        if report:
            log.info("tick: %s", report)

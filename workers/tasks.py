"""Thin Celery tasks: each re-reads its rows through a plain function of newsletter.dispatch."""

from __future__ import annotations

import logging

from celery import Celery, Task

from newsletter.jobs import JOBS, TASK_PREFIX, CeleryJobs, Job, JobArg, run_job
from newsletter.runtime import Runtime

log = logging.getLogger(__name__)

# Keyed by the app itself, not id(app): an id is reused once its app is collected.
_runtimes: dict[Celery, Runtime] = {}


def runtime_for(app: Celery) -> Runtime:
    """One Runtime per app and process; its jobs publish through the same app."""
    runtime = _runtimes.get(app)
    if runtime is None:
        settings = app.newsletter_settings  # type: ignore[attr-defined]
        runtime = _runtimes[app] = Runtime(settings, _jobs=CeleryJobs(app))
    return runtime


def warm_up(app: Celery) -> None:
    """Ready before the first task: the message code, compiled templates and catalogs, a
    started premailer, the send path's statements compiled and a database connection. A
    prefork pool's children inherit all but the connection, which they must not share."""
    import newsletter.messages  # noqa: F401
    from newsletter.dispatch.sending import warm_up as warm_up_sending
    from newsletter.rendering import warm_up as warm_up_rendering

    warm_up_rendering()
    runtime = runtime_for(app)
    warm_up_sending(runtime.sessions, runtime.sender)


def forget_runtimes() -> None:
    for runtime in _runtimes.values():
        runtime.engine.dispose(close=False)
    _runtimes.clear()


def register_tasks(app: Celery) -> None:
    """Add every job of the registry to `app` under the name CeleryJobs publishes, with the
    job's declared retry policy."""
    for job in JOBS.values():
        _register(app, job)


def _register(app: Celery, job: Job) -> None:
    policy = job.retry

    def task(self: Task, **kwargs: JobArg) -> None:
        try:
            result = run_job(runtime_for(self.app), job.name, kwargs)
        except policy.on as exc:
            raise self.retry(exc=exc, countdown=policy.countdown(self.request.retries)) from exc
        again = policy.come_back(result) if policy.come_back else None
        if again is not None:
            # Should this message be lost, the beat tick recovers the work (policy.recovery).
            raise self.retry(countdown=max(1.0, again))
        if job.name == "tick" and result:
            log.info("tick: %s", result)

    task.__name__ = job.name
    task.__doc__ = f"The {job.name} job; if lost: {policy.recovery}"
    # Not shared: a shared task is added to every app the process creates afterwards.
    app.task(name=TASK_PREFIX + job.name, bind=True, max_retries=policy.max_retries, shared=False)(
        task
    )

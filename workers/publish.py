"""How an edge publishes jobs to Celery: given to Runtime as `broker_jobs`."""

from __future__ import annotations

from newsletter.config import Settings
from newsletter.jobs import CeleryJobs


def celery_jobs(settings: Settings) -> CeleryJobs:
    """Jobs published by name to the broker of `settings` (Celery is imported only here)."""
    from workers.celery_app import create_app

    return CeleryJobs(create_app(settings))

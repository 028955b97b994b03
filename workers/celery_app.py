"""The Celery app, built from Settings; `celery -A workers.celery_app` reads the environment."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

from newsletter.config import Settings
from newsletter.errors import ConfigError

# Redis hands a message not acknowledged within this time to another worker, and a task
# waiting out a countdown is such a message: this must exceed the longest countdown any task
# is given (a postponed delivery waits at most store.MAX_BACKOFF, an hour), or the task would
# run twice. Two hours and a bit.
VISIBILITY_TIMEOUT = 2 * 3600 + 600


def create_app(settings: Settings, *, tick_every: float | None = None) -> Celery:
    """A Celery app on settings.broker_url with the sending engine's guarantees; beat ticks
    every `tick_every` seconds (default: settings.tick_every, NEWSLETTER_TICK_EVERY)."""
    tick_every = tick_every or settings.tick_every
    if not settings.broker_url:
        raise ConfigError("no broker configured: set NEWSLETTER_BROKER_URL (a redis:// URL)")
    app = Celery("newsletter", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        # A task is acknowledged only once done, and a worker that dies loses no message.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # A batch in progress keeps going when the broker goes away: the database, not the
        # broker, knows what was sent, and the tick re-enqueues what the broker forgot.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        beat_schedule={"tick": {"task": "newsletter.tick", "schedule": tick_every}},
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        timezone="UTC",
    )
    app.newsletter_settings = settings  # type: ignore[attr-defined]

    from workers.tasks import register_tasks

    register_tasks(app)
    return app


@worker_init.connect
def _warm_up(sender: Any, **_: Any) -> None:
    from workers.tasks import warm_up

    warm_up(sender.app)


@worker_process_init.connect
def _fresh_connections_after_fork(**_: Any) -> None:
    # A prefork child must not share the parent's database sockets.
    from workers.tasks import forget_runtimes

    forget_runtimes()


def __getattr__(name: str) -> Any:
    # `celery -A workers.celery_app worker` looks up `app`; build it on first use only.
    if name in ("app", "celery"):
        value = create_app(Settings.from_env())
        globals()[name] = value
        return value
    raise AttributeError(name)

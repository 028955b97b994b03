"""The subscribe answer does not depend on the address's state (issue 10, item 8): the
confirmation is sent or published after the answer, off the request, and every answer writes
and commits the same way. The times themselves: `python -m benchmarks.subscribe_timing`."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from typing import Any

import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from newsletter import subscriptions
from newsletter.jobs import CeleryJobs, JobArg
from newsletter.models import Event, Subscriber
from newsletter.runtime import Runtime
from newsletter.web.app import create_app

FORM = {"languages": ["en"], "name": "Reader"}


def _post(client: TestClient, email: str) -> tuple[int, str, float]:
    started = time.monotonic()
    response = client.post("/en/subscribe", data={**FORM, "email": email})
    return response.status_code, response.text, time.monotonic() - started


def test_the_answer_does_not_wait_for_the_confirmation(settings, engine, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the mail server holds every message for as long as it likes; a new address
    still gets its answer at once, committed, and its confirmation arrives afterwards."""
    url, handler = smtp_server
    release = threading.Event()
    original = handler.handle_DATA

    async def held(server, session, envelope):  # type: ignore[no-untyped-def]
        await asyncio.to_thread(release.wait, 30)
        return await original(server, session, envelope)

    handler.handle_DATA = held
    runtime = Runtime(replace(settings, smtp_url=url), _engine=engine)
    app = create_app(runtime.settings, runtime=runtime)
    with TestClient(app, base_url="https://news.example.org") as client:
        status, _text, took = _post(client, "new@example.org")
        assert status == 200
        assert took < 10  # the server holds the message for up to 30 s
        with runtime.session() as session:
            row = session.scalars(
                select(Subscriber).where(Subscriber.email == "new@example.org")
            ).one()
            assert row.status.value == "pending"  # committed before the answer
        assert handler.messages == []
        release.set()
        app.state.after_response.drain()
    [message] = handler.by_recipient()["new@example.org"]
    assert b"/confirm/" in message


class NotingJobs(CeleryJobs):
    """The real Celery publisher, noting which thread publishes each job."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.threads: list[str] = []

    def enqueue(self, session: Any, name: str, **kwargs: JobArg) -> None:
        self.threads.append(threading.current_thread().name)
        super().enqueue(session, name, **kwargs)


def test_every_state_gets_the_same_answer_and_write(broker_settings, engine) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a new, an active, a pending and an erased address are submitted with a
    broker: the same page for each, one event written and committed for each, and the
    confirmation jobs published by the app's after-response thread, never the request's."""
    from workers.celery_app import create_app as create_celery

    jobs = NotingJobs(create_celery(broker_settings))
    runtime = Runtime(broker_settings, _engine=engine, _jobs=jobs)
    secret = broker_settings.secret_key
    with runtime.session() as session:
        subscriptions.add_subscriber(session, secret, "active@example.org", "en", confirmed=True)
        subscriptions.add_subscriber(session, secret, "pending@example.org", "en")
        subscriptions.add_subscriber(session, secret, "erased@example.org", "en", confirmed=True)
        session.flush()
        subscriptions.forget(session, secret, "erased@example.org")
    app = create_app(runtime.settings, runtime=runtime)
    pages = set()
    with TestClient(app, base_url="https://news.example.org") as client:
        for email in ("new", "active", "pending", "erased"):
            with runtime.session() as session:
                before = session.scalar(select(func.count(Event.id)))
            status, text, _took = _post(client, f"{email}@example.org")
            assert status == 200
            pages.add(text)
            with runtime.session() as session:
                assert session.scalar(select(func.count(Event.id))) == before + 1, email
        app.state.after_response.drain()
    assert len(pages) == 1
    assert len(jobs.threads) == 2  # the new and the pending address
    assert all(name.startswith("after-response") for name in jobs.threads)
    broker = redis.Redis.from_url(broker_settings.broker_url)
    assert broker.llen("celery") == 2

"""Every confirmation a reader was promised ("check your mail") leaves once: a re-submitted
form's confirmation whose job is lost, or refused by the relay, is sent by the tick; one
that left is not sent again. Counted at an in-process SMTP sink."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from newsletter import dispatch
from newsletter.config import Settings
from newsletter.jobs import _defer, run_job
from newsletter.models import utcnow
from newsletter.runtime import Runtime
from newsletter.web.app import create_app
from newsletter.web.ratelimit import Limit

ADDRESS = "twice@example.org"


class HeldJobs:
    """Jobs kept after commit until the test runs them, or drops them (a lost job)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def enqueue(self, session: Any, name: str, **kwargs: Any) -> None:
        _defer(session, lambda n, kw: self.published.append((n, kw)), name, kwargs)

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        jobs, self.published = self.published, []
        return jobs


@pytest.fixture
def settings(settings: Settings, smtp_server) -> Settings:  # type: ignore[no-untyped-def]
    return replace(settings, smtp_url=smtp_server[0], stale_after=60.0)


@pytest.fixture
def jobs() -> HeldJobs:
    return HeldJobs()


@pytest.fixture
def runtime(settings: Settings, engine: Engine, jobs: HeldJobs) -> Runtime:
    return Runtime(settings, _engine=engine, _jobs=jobs)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    app: FastAPI = create_app(runtime.settings, runtime=runtime)
    # A day has passed between the two submissions: the daily limit allows a second email.
    app.state.subscribe_limits.confirmations = Limit(10, 86400)
    with TestClient(app, base_url="https://news.example.org", follow_redirects=False) as c:
        yield c


def _submit(client: TestClient, jobs: HeldJobs) -> list[tuple[str, dict[str, Any]]]:
    """The reader submits the form; returns the jobs it handed over after answering."""
    answer = client.post("/en/subscribe", data={"email": ADDRESS, "languages": ["en"]})
    assert answer.status_code == 200 and "Almost done" in answer.text
    client.app.state.after_response.drain()  # type: ignore[attr-defined]
    handed = jobs.take()
    assert [name for name, _ in handed] == ["send_confirmation"]
    return handed


def _run(runtime: Runtime, handed: list[tuple[str, dict[str, Any]]]) -> None:
    for name, kwargs in handed:
        run_job(runtime, name, kwargs)


def _tick(runtime: Runtime, jobs: HeldJobs, at: datetime) -> int:
    with runtime.session() as session:
        return dispatch.tick(session, runtime.settings, jobs, now=at).confirmations


def _copies(smtp_server) -> int:  # type: ignore[no-untyped-def]
    return len(smtp_server[1].by_recipient().get(ADDRESS, []))


def _late(runtime: Runtime, at: datetime) -> list[str]:
    with runtime.session() as session:
        return [c.email for c in dispatch.late_confirmations(session, runtime.settings, now=at)]


@pytest.mark.parametrize("loss", ["job dropped", "relay says 421"])
def test_resubmitted_form_confirmation_is_sent_by_the_tick(
    client: TestClient, runtime: Runtime, jobs: HeldJobs, smtp_server, loss: str
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a pending reader's first confirmation leaves; they submit the form again
    and that confirmation is lost (its job dropped, or the relay answers 421): staff see it
    late, the tick sends it once, and the reader has exactly two confirmations."""
    _run(runtime, _submit(client, jobs))
    assert _copies(smtp_server) == 1
    second = _submit(client, jobs)
    if loss == "relay says 421":
        smtp_server[1].fail_all_with = "421 4.3.0 try later"
        _run(runtime, second)
        smtp_server[1].fail_all_with = None
    assert _copies(smtp_server) == 1
    stale = utcnow() + timedelta(seconds=61)
    assert _late(runtime, stale) == [ADDRESS]
    later = stale + timedelta(hours=1)  # past the first retry's back-off, too
    assert _tick(runtime, jobs, later) == 1
    assert _tick(runtime, jobs, later) == 0  # leased: queued once
    _run(runtime, jobs.take())
    assert _copies(smtp_server) == 2
    assert _tick(runtime, jobs, later + timedelta(hours=3)) == 0
    assert _late(runtime, later + timedelta(hours=3)) == []


def test_resubscribing_after_leaving_a_lost_confirmation_is_sent(
    client: TestClient, runtime: Runtime, jobs: HeldJobs, smtp_server
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a reader who confirmed and later unsubscribed subscribes again; the new
    confirmation's job is lost: the tick sends it (the old one does not count)."""
    from newsletter import subscriptions
    from newsletter.models import EventSource

    _run(runtime, _submit(client, jobs))
    with runtime.session() as session:
        reader = subscriptions.get_by_email(session, ADDRESS)
        assert reader is not None
        subscriptions.confirm(session, reader.id)
        subscriptions.unsubscribe(session, reader.id, source=EventSource.staff)
    jobs.take()  # the welcome, if any
    _submit(client, jobs)  # dropped
    later = utcnow() + timedelta(hours=1)
    assert _tick(runtime, jobs, later) == 1
    _run(runtime, jobs.take())
    assert _copies(smtp_server) == 2


def test_a_confirmation_that_left_is_not_sent_again(
    client: TestClient, runtime: Runtime, jobs: HeldJobs, smtp_server
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: nothing fails, but the tick queued the confirmation again while its own job
    was slow (or the broker delivered it twice): the reader still gets one email."""
    handed = _submit(client, jobs)
    later = utcnow() + timedelta(seconds=61)
    assert _tick(runtime, jobs, later) == 1  # its own job looks lost
    _run(runtime, handed)
    _run(runtime, jobs.take())
    _run(runtime, handed)
    assert _copies(smtp_server) == 1
    assert _tick(runtime, jobs, later + timedelta(days=1)) == 0

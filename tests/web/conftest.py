"""Web fixtures: the app built from the test's settings and an HTTP client against it."""

from __future__ import annotations

import mailbox
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from newsletter import subscriptions
from newsletter.config import Settings
from newsletter.db import make_engine
from newsletter.models import Base, Event, EventSource, Subscriber
from newsletter.runtime import Runtime
from newsletter.tokens import TokenSigner
from newsletter.web.app import create_app


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """As the shared fixture, but emptied with DELETE: these tests leave a handful of rows,
    and PostgreSQL's TRUNCATE of every table costs half a second per test."""
    eng = make_engine(db_url)
    yield eng
    with eng.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    eng.dispose()


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime.settings, runtime=runtime)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """httpx through the ASGI app; redirects are not followed, so tests see them."""
    with TestClient(app, base_url="https://news.example.org", follow_redirects=False) as c:
        yield c


class DatabaseSigner(TokenSigner):
    """The product's signer; make() without a salt uses the subscriber's current one from the
    database, as the code that mails a link does (an id that was never used gets salt 1)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime.settings.secret_key)
        self.runtime = runtime

    def make(  # type: ignore[override]
        self, purpose: str, subscriber_id: int, edition_id: int | None = None, **kw: Any
    ) -> str:
        if "salt" not in kw:
            with self.runtime.session() as s:
                kw["salt"] = s.scalar(
                    select(Subscriber.link_salt).where(Subscriber.id == subscriber_id)
                )
            kw["salt"] = 1 if kw["salt"] is None else kw["salt"]
        return super().make(purpose, subscriber_id, edition_id, **kw)


@pytest.fixture
def signer(runtime: Runtime) -> TokenSigner:
    return DatabaseSigner(runtime)


@pytest.fixture
def make_subscriber(runtime: Runtime):  # type: ignore[no-untyped-def]
    """Add a committed subscriber: make_subscriber('a@example.org', 'be,en', active=True)."""

    def make(
        email: str, languages: str = "be", *, active: bool = True, name: str | None = None
    ) -> int:
        with runtime.session() as s:
            subscriber = subscriptions.add_subscriber(
                s,
                runtime.settings.secret_key,
                email,
                languages,
                name=name,
                confirmed=active,
                source=EventSource.staff,
            )
            s.flush()
            return subscriber.id

    return make


class State:
    """What a test reads back: the database rows and the Maildir outbox, as a user would check."""

    def __init__(self, runtime: Runtime, app: FastAPI | None = None) -> None:
        self.runtime = runtime
        self.app = app

    def subscriber(self, email: str) -> tuple[str, str] | None:
        """(status, languages) of an address as the database holds it now, or None."""
        with self.runtime.session() as s:
            sub = s.scalar(select(Subscriber).where(Subscriber.email == email))
            return (sub.status.value, sub.languages) if sub else None

    def events(self, email: str | None = None) -> list[tuple[str, str, int | None]]:
        """(kind, source, edition_id) of the audit trail, oldest first."""
        with self.runtime.session() as s:
            query = select(Event).order_by(Event.id)
            if email is not None:
                query = query.join(Subscriber).where(Subscriber.email == email)
            return [(e.kind, e.source.value, e.edition_id) for e in s.scalars(query)]

    def snapshot(self) -> list[tuple[object, ...]]:
        """Every subscriber and event row: to show that a request changed nothing."""
        with self.runtime.session() as s:
            subs = [
                (x.id, x.email, x.status.value, x.languages, x.confirmed_at, x.unsubscribed_at)
                for x in s.scalars(select(Subscriber).order_by(Subscriber.id))
            ]
            events = [(e.id, e.kind) for e in s.scalars(select(Event).order_by(Event.id))]
            return [*subs, *events]

    def outbox(self, address: str) -> list[str]:
        """Messages the Maildir outbox holds for one address (in-process jobs, no SMTP URL),
        once the app has sent what its requests handed over after answering."""
        if self.app is not None:
            self.app.state.after_response.drain()
        folder = self.runtime.settings.outbox
        if not folder.exists():
            return []
        box = mailbox.Maildir(folder, create=False)
        return [m.as_string() for m in box if address in (m["To"] or "")]


@pytest.fixture
def state(runtime: Runtime, app: FastAPI) -> State:
    return State(runtime, app)


class Server:
    """`newsletter serve` in a subprocess on a free port: the app as a deployment runs it.

    Its output goes to a file (a pipe nobody reads would fill and stop the server)."""

    def __init__(
        self, run_env: dict[str, str], port: int, cwd: Path, args: tuple[str, ...] = ()
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = cwd / f"serve-{port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "newsletter", "serve", "--port", str(port), *args],
                env=run_env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"newsletter serve exited: {self.output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("newsletter serve did not come up in 60 s")

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace")

    def stop(self) -> str:
        """Stop it as a supervisor does (SIGTERM) and return all it printed."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.output()


@pytest.fixture
def serve(settings: Settings, engine: Engine, tmp_path: Path, env_for):  # type: ignore[no-untyped-def]
    """Start `newsletter serve` with the test's settings plus overrides; stopped afterwards.

    serve(port, *args, **env) -> Server (args: more options; one worker process unless
    args say --workers)."""
    servers: list[Server] = []

    def start(port: int, *args: str, **env: str) -> Server:
        full = env_for(settings)
        full.update(env)
        if "--workers" not in args:
            args = (*args, "--workers", "1")
        server = Server(full, port, tmp_path, args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()

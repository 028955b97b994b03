"""Helpers shared by the dispatch tests (importable: conftest puts this folder on sys.path)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.languages import LANGUAGE_SETS, format_languages
from newsletter.models import Subscriber, SubscriberStatus, utcnow
from newsletter.paths import sample_data_dir

SAMPLE = sample_data_dir() / "2020-W05.yaml"
WEEK = "2020-W05"

pg_only = pytest.mark.parametrize("db_url", ["pg"], indirect=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def add_readers(
    session: Session,
    count: int,
    *,
    status: SubscriberStatus = SubscriberStatus.active,
    prefix: str = "reader",
    sets: Sequence[tuple[str, ...]] = LANGUAGE_SETS,
) -> list[Subscriber]:
    """`count` subscribers cycling through `sets` (default: all 15 ordered language sets)."""
    now = utcnow()
    people = [
        Subscriber(
            email=f"{prefix}{i}@example.org",
            name=f"Reader {i}" if i % 2 else None,
            languages=format_languages(sets[i % len(sets)]),
            status=status,
            confirmed_at=now if status is SubscriberStatus.active else None,
        )
        for i in range(count)
    ]
    session.add_all(people)
    session.flush()
    return people


def active_languages(session: Session) -> dict[str, str]:
    """email -> languages of every active subscriber."""
    rows = session.execute(
        select(Subscriber.email, Subscriber.languages).where(
            Subscriber.status == SubscriberStatus.active
        )
    )
    return {email: langs for email, langs in rows}


class RecordingJobs:
    """Jobs that only remember what was published after commit (planning tests)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def enqueue(self, session: Session | None, name: str, **kwargs: Any) -> None:
        from newsletter.jobs import _defer

        _defer(session, lambda n, kw: self.published.append((n, kw)), name, kwargs)

    def run(self, runtime: Any, name: str | None = None) -> list[str]:
        """Run the published jobs (only those called `name`, if given) in order, as a worker
        would, until none is left; what they publish is recorded here and run too."""
        from newsletter.jobs import run_job

        ran = []
        while job := next(((n, kw) for n, kw in self.published if name in (None, n)), None):
            self.published.remove(job)
            run_job(replace(runtime, _jobs=self), *job)
            ran.append(job[0])
        return ran


class RedisServer:
    """A redis-server of our own on a free port, keeping nothing on disk; restartable."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()


@contextmanager
def celery_worker(settings: Settings) -> Iterator[Any]:
    """A real Celery worker running in this process (a thread, solo pool)."""
    from celery.contrib.testing.worker import start_worker

    from workers.celery_app import create_app

    app = create_app(settings)
    with start_worker(
        app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=30
    ):
        yield app


class WorkerProcess:
    """`newsletter worker` in a subprocess, which a test may SIGKILL.

    `supervised` restarts it whenever it exits by itself, as the README's systemd unit
    (Restart=always) does in production; `restarts` counts those exits."""

    def __init__(self, env: dict[str, str], cwd: Path, name: str, supervised: bool = False) -> None:
        self.log = cwd / f"{name}.log"
        self.env = {**env, "PYTHONUNBUFFERED": "1"}
        self.cwd = cwd
        self.restarts = 0
        self.process = self._spawn()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        if supervised:
            self._supervisor = threading.Thread(target=self._supervise, daemon=True)
            self._supervisor.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "newsletter", "worker", "--loglevel=WARNING"],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _supervise(self) -> None:
        while not self._stopping.wait(0.1):
            if self.process.poll() is not None and not self._stopping.is_set():
                self.restarts += 1
                self.process = self._spawn()

    def _end_supervision(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()

    def kill(self) -> None:
        self._end_supervision()
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        self._end_supervision()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(1)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def wait_until(predicate: Callable[[], bool], timeout: float = 60, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError("timed out waiting")


class SlowHandler:
    """An aiosmtpd handler that answers RCPT and end-of-data after `delay` seconds and keeps
    every message it accepted (a slow but healthy relay)."""

    def __init__(self, delay: float) -> None:
        import threading

        self.delay = delay
        self.received: list[str] = []  # one recipient per accepted message
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        import asyncio

        await asyncio.sleep(self.delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        import asyncio

        await asyncio.sleep(self.delay)
        with self.lock:
            self.received.extend(a.lower() for a in envelope.rcpt_tos)
        return "250 accepted"

    def copies(self) -> dict[str, int]:
        """Messages accepted per reader."""
        with self.lock:
            counts: dict[str, int] = {}
            for rcpt in self.received:
                counts[rcpt] = counts.get(rcpt, 0) + 1
        return counts


@contextmanager
def slow_smtp_server(delay: float) -> Iterator[tuple[str, SlowHandler]]:
    """An in-process SMTP server answering after `delay` seconds: yields (URL, handler)."""
    from aiosmtpd.controller import Controller

    handler = SlowHandler(delay)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}?timeout=10", handler
    finally:
        controller.stop()


class PrivatePostgres:
    """A PostgreSQL cluster of our own in a temporary folder, on a free port, that a test may
    stop and start (never the machine's shared server). Runs as `postgres` under root."""

    def __init__(self) -> None:
        import glob
        import tempfile

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            pytest.skip("PostgreSQL server binaries are not installed")
        self.bin = Path(found[-1]).parent
        self.folder = Path(tempfile.mkdtemp(prefix="nl-pg-", dir="/tmp"))
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data = self.folder / "data"
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N"
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=50"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-l",
            str(self.folder / "log"), "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

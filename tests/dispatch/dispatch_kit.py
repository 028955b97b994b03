"""Helpers shared by the dispatch tests (importable: conftest puts this folder on sys.path)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
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
    """`newsletter worker` in a subprocess, which a test may SIGKILL."""

    def __init__(self, env: dict[str, str], cwd: Path, name: str) -> None:
        self.log = cwd / f"{name}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "worker", "--loglevel=WARNING"],
            env={**env, "PYTHONUNBUFFERED": "1"},
            cwd=cwd,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(1)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_until(predicate: Callable[[], bool], timeout: float = 60, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError("timed out waiting")

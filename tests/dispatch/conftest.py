"""Dispatch fixtures: the sample edition, readers in every language set, a private Redis,
real Celery workers (in-process, or `newsletter worker` subprocesses a test may kill)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from newsletter.config import Settings
from newsletter.models import Edition, Subscriber
from newsletter.runtime import Runtime

sys.path.insert(0, str(Path(__file__).parent))

from dispatch_kit import (
    SAMPLE,
    RecordingJobs,
    RedisServer,
    WorkerProcess,
    add_readers,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Short engine timings so that recovery happens within seconds."""
    return replace(settings, stale_after=2.0, retry_backoff=0.2, batch_size=25, max_attempts=20)


@pytest.fixture
def edition(runtime: Runtime) -> Edition:
    """The sample week, imported and committed."""
    from newsletter.editions import import_edition_file

    with runtime.session() as session:
        return import_edition_file(session, SAMPLE)


@pytest.fixture
def readers(runtime: Runtime) -> Callable[..., list[Subscriber]]:
    def make(count: int, **kwargs: Any) -> list[Subscriber]:
        with runtime.session() as session:
            return add_readers(session, count, **kwargs)

    return make


@pytest.fixture
def recording_jobs() -> RecordingJobs:
    return RecordingJobs()


# -- a private Redis ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker_settings(settings: Settings, redis_server: RedisServer) -> Settings:
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    return replace(settings, broker_url=redis_server.url)


@pytest.fixture
def broker_runtime(broker_settings: Settings, engine: Engine) -> Iterator[Runtime]:
    from workers.publish import celery_jobs

    runtime = Runtime(broker_settings, _engine=engine, broker_jobs=celery_jobs)
    yield runtime


@pytest.fixture
def worker_processes(
    broker_settings: Settings, env_for: Callable[[Settings], dict[str, str]], tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(settings: Settings | None = None, *, supervised: bool = False) -> WorkerProcess:
        worker = WorkerProcess(
            env_for(settings or broker_settings),
            tmp_path,
            f"worker{len(started)}",
            supervised=supervised,
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
        # Shown only when the test failed: what the worker said is the first thing to read.
        print(f"--- {worker.log.name} (restarted {worker.restarts} times) ---\n{worker.log_tail()}")

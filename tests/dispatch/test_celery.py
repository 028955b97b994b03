"""Through real Celery workers on a private Redis: speed of the normal path, and crashes."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from dispatch_kit import WEEK, active_languages, celery_worker, pg_only, wait_until

from newsletter import dispatch
from newsletter.models import EditionStatus
from newsletter.runtime import Runtime
from workers.publish import celery_jobs

pytestmark = [pg_only, pytest.mark.slow]

# Three variants, not fifteen: each new worker process prepares them once.
FEW = [("be",), ("ru",), ("en", "be")]


def _progress(runtime: Runtime) -> dispatch.Progress:
    with runtime.session() as session:
        return dispatch.progress(session, WEEK)


def _start(runtime: Runtime) -> None:
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=runtime.jobs)


def _tick_until_sent(runtime: Runtime, timeout: float = 60) -> dispatch.Progress:
    """The beat's job, every half second: stale claims back, lost batches re-enqueued."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with runtime.session() as session:
            dispatch.tick(session, runtime.settings, runtime.jobs)
        p = _progress(runtime)
        if p.status is EditionStatus.sent:
            return p
        time.sleep(0.5)
    raise AssertionError(f"not sent: {p}")


@pytest.fixture
def smtp_broker_runtime(broker_settings, engine, smtp_server):  # type: ignore[no-untyped-def]
    url, handler = smtp_server
    runtime = Runtime(
        replace(broker_settings, smtp_url=url), _engine=engine, broker_jobs=celery_jobs
    )
    return runtime, handler


def test_send_through_a_celery_worker(smtp_broker_runtime, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: `send` returns at once; a worker delivers to every active reader once."""
    runtime, handler = smtp_broker_runtime
    readers(90, sets=FEW)
    with celery_worker(runtime.settings):
        _start(runtime)
        wait_until(lambda: _progress(runtime).status is EditionStatus.sent, timeout=60)
    with runtime.session() as session:
        expected = active_languages(session)
    received = handler.by_recipient()
    assert sorted(received) == sorted(expected)
    assert all(len(copies) == 1 for copies in received.values())


def test_two_workers_never_send_the_same_delivery(
    smtp_broker_runtime, edition, readers, worker_processes
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: two worker processes share an edition, one of them planning it in chunks of
    30 while both send; each reader gets exactly one email."""
    runtime, handler = smtp_broker_runtime
    runtime = replace(runtime, settings=replace(runtime.settings, plan_chunk=30))
    readers(100, sets=FEW)
    workers = [worker_processes(runtime.settings) for _ in range(2)]
    _start(runtime)
    wait_until(lambda: _progress(runtime).status is EditionStatus.sent, timeout=90)
    received = handler.by_recipient()
    assert len(received) == 100 and all(len(c) == 1 for c in received.values())
    assert all(w.process.poll() is None for w in workers)


def _crash_test_runtime(smtp_broker_runtime):  # type: ignore[no-untyped-def]
    runtime, handler = smtp_broker_runtime
    # 40 messages a second: the crash lands mid-send, and a chunk (the window) is 40.
    return replace(runtime, settings=replace(runtime.settings, rate_limit=40.0)), handler


def _assert_everyone_once_but_window(runtime: Runtime, handler, window: int) -> None:  # type: ignore[no-untyped-def]
    with runtime.session() as session:
        expected = active_languages(session)
    received = handler.by_recipient()
    assert sorted(received) == sorted(expected), "somebody was missed"
    duplicates = sum(len(c) - 1 for c in received.values())
    assert duplicates <= window, f"{duplicates} duplicates, more than the crash window"


def test_worker_killed_mid_send(smtp_broker_runtime, edition, readers, worker_processes) -> None:  # type: ignore[no-untyped-def]
    """Scenario: SIGKILL the worker halfway, start another: the edition completes, nobody is
    missed, and duplicates stay within one chunk (the messages in flight)."""
    runtime, handler = _crash_test_runtime(smtp_broker_runtime)
    readers(120, sets=FEW)
    first = worker_processes(runtime.settings)
    _start(runtime)
    wait_until(lambda: len(handler.messages) >= 45, timeout=60, every=0.05)
    first.kill()
    worker_processes(runtime.settings)
    p = _tick_until_sent(runtime)
    assert p.sent == 120
    _assert_everyone_once_but_window(runtime, handler, window=40)


def test_redis_restarted_mid_send(
    smtp_broker_runtime, edition, readers, worker_processes, redis_server
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: Redis is away for longer than a stale period mid-send and comes back empty;
    the running batch finishes, the beat tick re-enqueues the rest and all go out, nobody
    twice: nothing was killed, so there is no crash window to allow for.

    The worker runs supervised, as the README's systemd unit runs it: now and then (about
    one broker restart in 80 here) kombu 5.7 ends a worker whose last acknowledgement was
    lost, while reconnecting ("Unrecoverable error: AttributeError ... 'hostname'"). That
    is after its batch was recorded, so its restart sends nothing twice."""
    runtime, handler = _crash_test_runtime(smtp_broker_runtime)
    readers(120, sets=FEW)
    worker_processes(runtime.settings, supervised=True)
    _start(runtime)
    wait_until(lambda: len(handler.messages) >= 40, timeout=60, every=0.05)
    redis_server.stop()
    time.sleep(2.5 * runtime.settings.stale_after)
    redis_server.start()
    p = _tick_until_sent(runtime, timeout=90)
    assert p.sent == 120
    _assert_everyone_once_but_window(runtime, handler, window=0)


def test_a_supervised_worker_that_exits_is_started_again(
    smtp_broker_runtime, edition, readers, worker_processes
) -> None:  # type: ignore[no-untyped-def]
    """The harness the Redis-restart test relies on: a supervised worker that ends on its own
    (here SIGKILLed behind the harness's back) is started again, like Restart=always, and
    the new one sends."""
    import os
    import signal

    runtime, handler = smtp_broker_runtime
    readers(20, sets=FEW)
    worker = worker_processes(runtime.settings, supervised=True)
    first = worker.process.pid
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: worker.restarts == 1 and worker.process.pid != first, timeout=10)
    _start(runtime)
    p = _tick_until_sent(runtime, timeout=60)
    assert p.sent == 20 and worker.restarts == 1
    assert all(len(copies) == 1 for copies in handler.by_recipient().values())

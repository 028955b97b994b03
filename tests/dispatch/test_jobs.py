"""Jobs are handed over only after the enqueuing session commits."""

from __future__ import annotations

from sqlalchemy import text

from newsletter.jobs import InProcessJobs


def test_in_process_jobs_run_after_commit(session) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a job waits for commit, a rolled-back one never runs, none recurse."""
    ran: list[tuple[str, dict]] = []

    def runner(name: str, kwargs: dict) -> None:
        ran.append((name, kwargs))
        if name == "tick" and kwargs.get("depth") == 0:
            jobs.enqueue(None, "tick", depth=1)  # joins the queue, runs after this one
            assert ran[-1] == ("tick", {"depth": 0})

    jobs = InProcessJobs(runner)
    session.execute(text("SELECT 1"))
    jobs.enqueue(session, "send_confirmation", subscriber_id=7)
    assert ran == []
    session.commit()
    assert ran == [("send_confirmation", {"subscriber_id": 7})]

    session.execute(text("SELECT 1"))
    jobs.enqueue(session, "send_confirmation", subscriber_id=8)
    session.rollback()
    session.commit()
    assert ran == [("send_confirmation", {"subscriber_id": 7})]

    jobs.enqueue(None, "tick", depth=0)
    assert ran[1:] == [("tick", {"depth": 0}), ("tick", {"depth": 1})]


def test_a_worker_is_ready_before_its_first_task(broker_settings) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a starting worker has compiled every email template and catalog and opened a
    database connection, so its first message waits for none of them."""
    from newsletter import i18n, rendering
    from workers.celery_app import create_app
    from workers.tasks import forget_runtimes, runtime_for, warm_up

    rendering.email_environment.cache_clear()
    i18n.translations.cache_clear()
    app = create_app(broker_settings)
    try:
        warm_up(app)
        env = rendering.email_environment()
        assert len(env.cache) == len(env.list_templates()) >= 6  # type: ignore[arg-type]
        assert i18n.translations.cache_info().currsize == 3
        assert runtime_for(app).engine.pool.checkedin() == 1
    finally:
        forget_runtimes()


def test_jobs_in_savepoints_wait_for_the_real_commit(session) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the tick starts two sends, each in a savepoint; the second fails: the first
    one's job is handed over only when the whole transaction commits, the second's never."""
    ran: list[tuple[str, dict]] = []
    jobs = InProcessJobs(lambda name, kwargs: ran.append((name, kwargs)))
    session.execute(text("SELECT 1"))
    with session.begin_nested():
        jobs.enqueue(session, "plan", edition_id=1)
    assert ran == []  # released savepoint: nothing is committed yet
    try:
        with session.begin_nested():
            jobs.enqueue(session, "plan", edition_id=2)
            raise RuntimeError("edition 2 is incomplete")
    except RuntimeError:
        pass
    jobs.enqueue(session, "tick")
    assert ran == []
    session.commit()
    assert ran == [("plan", {"edition_id": 1}), ("tick", {})]


def test_celery_redelivers_nothing_a_countdown_still_holds() -> None:
    """Scenario: Redis's visibility timeout is longer than the longest countdown any task
    gets (a postponed delivery, a plan retry), so no waiting task runs twice."""
    from newsletter.config import Settings
    from newsletter.dispatch.store import MAX_BACKOFF
    from newsletter.jobs import JOBS
    from workers.celery_app import create_app

    app = create_app(Settings(broker_url="redis://127.0.0.1:1/0", secret_key="k"))
    timeout = app.conf.broker_transport_options["visibility_timeout"]
    longest = max(MAX_BACKOFF, *(job.retry.cap for job in JOBS.values()))
    assert timeout > longest
    assert sorted(name for name in app.tasks if name.startswith("newsletter.")) == sorted(
        f"newsletter.{name}" for name in JOBS
    )


def test_the_domain_and_the_runtime_import_no_celery_and_no_workers() -> None:
    """Scenario: importing the runtime, the registry and the engine in a fresh interpreter
    loads neither Celery nor the workers package."""
    import subprocess
    import sys

    code = (
        "import sys, newsletter.runtime, newsletter.jobs, newsletter.dispatch;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('celery', 'workers')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_documents_each_job_of_the_registry() -> None:
    """Scenario: the README's retry-policy table lists every job of JOBS, and no other job
    (the test send is a row of its own saying it is not a job): a job added to the registry
    without its policy written down fails here."""
    import re
    from pathlib import Path

    from newsletter.jobs import JOBS

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme.split("**Every job has one declared retry policy**")[1].split("\n\n")[1]
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]  # not the header
    named = [re.match(r"\| `(\w+)` \|", row) for row in rows]
    assert {m.group(1) for m in named if m} == set(JOBS)
    assert [row for row, m in zip(rows, named, strict=True) if not m] == [
        row for row in rows if row.startswith("| test send ") and "not a job" in row
    ]

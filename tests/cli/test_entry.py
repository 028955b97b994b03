"""The process entry (`newsletter`, `python -m newsletter`): the collector waits for the
command, start-up's objects are frozen out of collections, and exit codes are main()'s."""

from __future__ import annotations

import gc
import subprocess
import sys

import click

from newsletter.cli import cli


def test_collection_resumes_when_the_command_starts_and_start_up_is_frozen() -> None:
    ctx = click.Context(cli)
    gc.disable()
    try:
        assert cli.get_command(ctx, "status") is not None
        assert gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()


def test_main_called_in_a_process_of_its_own_leaves_the_collector_alone() -> None:
    frozen = gc.get_freeze_count()
    assert cli.get_command(click.Context(cli), "status") is not None
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_the_entry_exits_with_the_commands_code(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def newsletter(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'n.db'}", "PATH": ""}
        return subprocess.run(
            [sys.executable, "-m", "newsletter", *args],
            capture_output=True, text=True, env=env, cwd=tmp_path,
        )  # fmt: skip

    assert newsletter("--version").returncode == 0
    wrong = newsletter("nosuch")
    assert wrong.returncode == 2 and "No such command 'nosuch'" in wrong.stderr
    missing = newsletter("status", "--week", "2020-W05")
    assert missing.returncode == 1
    assert (
        missing.stderr.strip()
        == "error: the database has no tables yet: run `newsletter db upgrade`"
    )


def test_a_ready_worker_freezes_what_start_up_made_but_not_its_garbage() -> None:
    """newsletter worker freezes on Celery's worker_ready (after the warm-up): garbage made
    before (a reference cycle nobody holds) is collected first, never kept for good."""
    import weakref

    from newsletter.cli import freeze_start_up

    class Node:
        pass

    cycle = Node()
    cycle.me = cycle  # type: ignore[attr-defined]
    gone = weakref.ref(cycle)
    del cycle
    try:
        freeze_start_up(sender=None)
        assert gone() is None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()

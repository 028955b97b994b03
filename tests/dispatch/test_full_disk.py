"""A real full disk under the Maildir outbox: a tmpfs of our own that fills mid-send. The
edition pauses saying the disk is full, nobody is failed, and once space is freed `resume`
delivers the rest: one file per reader, counted in the Maildir."""

from __future__ import annotations

import mailbox
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from dispatch_kit import WEEK

ROOM = 150 * 1024  # bytes left free: two to four of the sample week's 30-62 KB messages
READERS = 12


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs mounted for this test (unmounted after it, whatever happens)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {mounted.stderr}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def _copies(outbox: Path) -> Counter[str]:
    return Counter(m["Delivered-To"] for m in mailbox.Maildir(outbox, create=False))


def test_disk_full_mid_send_pauses_then_resume_delivers_the_rest_once(
    cli, edition, readers, small_disk: Path
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the outbox's disk has room for a few messages of twelve: `send --wait`
    exits 1 saying the edition is paused because the disk is full; those that fit are sent,
    the rest queued, nobody failed; a big file is deleted, `resume` delivers the rest and
    every reader has exactly one message in the Maildir."""
    readers(READERS)
    outbox = small_disk / "outbox"
    filler = small_disk / "filler"
    free = os.statvfs(small_disk)
    filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - ROOM))
    env = {"NEWSLETTER_OUTBOX": str(outbox)}

    sent = cli("send", "--week", WEEK, "--wait", env=env)
    assert sent.returncode == 1, sent.stdout + sent.stderr
    assert "Traceback" not in sent.stderr
    [line] = [x for x in sent.stderr.splitlines() if x.startswith("error:")]
    assert "2020-W05 is paused" in line and "disk is full" in line, line
    first = _copies(outbox)
    assert 0 < len(first) < READERS and set(first.values()) == {1}  # it filled mid-send
    status = cli("status", "--week", WEEK, env=env)
    assert f"paused — queued {READERS - len(first)}, sending 0, sent {len(first)}, failed 0" in (
        status.stdout
    ), status.stdout
    assert "disk is full" in status.stdout

    filler.unlink()
    resumed = cli("resume", "--week", WEEK, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert _copies(outbox) == {f"reader{i}@example.org": 1 for i in range(READERS)}
    status = cli("status", "--week", WEEK, env=env)
    assert f"sent — queued 0, sending 0, sent {READERS}, failed 0" in status.stdout

"""Smoke tests of the benchmark harness (benchmarks/), tiny N so they take seconds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
POSTFIX = ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink")


def _admin_dsn() -> str:
    """The PostgreSQL the test fixtures use (NEWSLETTER_TEST_PG_URL), as a libpq DSN."""
    url = os.environ.get("NEWSLETTER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    return url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"


needs_smtp_sink = pytest.mark.skipif(
    not any(Path(p).exists() for p in POSTFIX),
    reason="smtp-sink is absent (Debian package postfix); the benchmark would apt-get it",
)


@needs_smtp_sink
def test_ceiling_only_loads_subscribers_and_measures_smtp_source() -> None:
    """The harness makes a database, COPYs 200 subscribers and times smtp-source into smtp-sink."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.dispatch", "--subscribers", "200",
         "--ceiling-only", "2000", "--no-install", "--admin-dsn", _admin_dsn()],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "smtp-source -d -s 4 -m 200 -l 2000" in proc.stdout
    assert "messages/s" in proc.stdout


@needs_smtp_sink
@pytest.mark.slow
def test_dispatch_benchmark_runs_end_to_end_at_200_subscribers() -> None:
    """The benchmark command sends to 200 subscribers through a real worker and prints a table."""
    pytest.importorskip("newsletter.messages", reason="the send path needs the edition's messages")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.dispatch", "--subscribers", "200", "--workers", "1",
         "--no-ceiling", "--no-install", "-q", "--admin-dsn", _admin_dsn()],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| 200 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == "1"  # one worker
    assert "failed" not in cells[4]  # every delivery was sent
    assert float(cells[5].replace(",", "")) > 0  # emails/s


@needs_smtp_sink
@pytest.mark.slow
def test_engine_benchmark_measures_a_baseline_tree_and_this_one() -> None:
    """The in-process engine benchmark sends 200 readers once per tree and prints both rows;
    the baseline's measuring process imports the exported tree's package, not this one."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.engine", "--subscribers", "200", "--rounds", "1",
         "--baseline", "HEAD", "--no-install", "--admin-dsn", _admin_dsn()],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    before = next(line for line in proc.stdout.splitlines() if line.startswith("round 1 before"))
    after = next(line for line in proc.stdout.splitlines() if line.startswith("round 1 after"))
    assert "/nlengine-" in before and f"({ROOT / 'newsletter'})" in after
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("| before", "| after"))]
    assert len(rows) == 2
    for row in rows:
        cpu, rate = (float(c.strip().replace(",", "")) for c in row.strip("|").split("|")[1:])
        assert cpu > 0 and rate > 0


@needs_smtp_sink
@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind is not installed")
def test_callgrind_counts_the_measuring_process_of_the_send_loop() -> None:
    """One of benchmarks.instructions' two runs (each a minute under callgrind): 20 readers
    sent twice, counted; the whole process, start-up included, is millions of instructions."""
    script = (
        "import sys\n"
        "from benchmarks.database import BenchDatabase\n"
        "from benchmarks.engine import prepare\n"
        "from benchmarks.instructions import count\n"
        "from benchmarks.services import SmtpSink\n"
        "with BenchDatabase(sys.argv[1]) as db, SmtpSink() as sink:\n"
        "    prepare(db, 20)\n"
        "    print('counted', count(None, db.url, sink.url, 2))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, _admin_dsn()],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counted = int(proc.stdout.split("counted ")[1])
    assert counted > 100_000_000

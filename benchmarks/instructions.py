"""Instructions per email of the send loop, counted by callgrind: what benchmarks.engine times,
as a count that comes out the same whatever else the machine is doing.

python -m benchmarks.instructions [--subscribers 2000] [--baseline COMMIT]

On a shared machine the CPU time of the same commit swings by 10-20 % between runs, more
than most changes to the loop are worth. Here each tree's measuring process (the engine
benchmark's, under `valgrind --tool=callgrind`) sends every planned reader once cold and
then once or twice more; the difference of the two runs' totals is one warm pass. It counts
what the process executes, not the time it waits for the relay or PostgreSQL, nor the
kernel's work. Each run takes a minute or two: callgrind is ~50 times slower than the CPU.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.engine import ADMIN_DSN, labelled_trees, prepare

BATCH = 500  # send_batch per range of this many ids, as workers get them


def count(code: Path | None, db_url: str, smtp_url: str, passes: int) -> int:
    """Instructions callgrind counted in a measuring process that sends `passes` times, with
    the `newsletter` package of `code` (None: this tree's)."""
    here = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="nlinstr-") as run_dir:
        (Path(run_dir) / "newsletter").symlink_to((code or here) / "newsletter")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join((run_dir, str(here)))}
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={run_dir}/callgrind.out",
             sys.executable, "-m", "benchmarks.engine",
             "--child", db_url, smtp_url, str(BATCH), str(passes)],
            env=env, cwd=run_dir, capture_output=True, text=True,
        )  # fmt: skip
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"the measuring process failed:\n{proc.stdout}{proc.stderr[-3000:]}")
    return int(found.group(1))


def per_email(code: Path | None, db_url: str, smtp_url: str, readers: int) -> float:
    """One warm pass's instructions per email: a run of three passes minus a run of two."""
    return (count(code, db_url, smtp_url, 3) - count(code, db_url, smtp_url, 2)) / readers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--baseline", metavar="COMMIT", help="also count COMMIT")
    parser.add_argument("--admin-dsn", default=ADMIN_DSN, help="PostgreSQL to create DBs in")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian package valgrind)")
    from benchmarks.database import BenchDatabase
    from benchmarks.services import SmtpSink, ensure_postfix

    ensure_postfix(install=not args.no_install)
    rows: list[tuple[str, float]] = []
    with (
        tempfile.TemporaryDirectory(prefix="nlinstr-") as tmp,
        BenchDatabase(args.admin_dsn) as db,
        SmtpSink() as sink,
    ):
        prepare(db, args.subscribers)
        for label, code in labelled_trees(args.baseline, Path(tmp)):
            rows.append((label, per_email(code, db.url, sink.url, args.subscribers)))
            print(f"{label}: {rows[-1][1]:,.0f} instructions per email", flush=True)
    print()
    print(f"one warm send_batch pass over {args.subscribers:,} readers, callgrind:")
    print("| tree | instructions per email | vs the first |")
    print("|---|---:|---:|")
    for label, value in rows:
        print(f"| {label} | {value:,.0f} | {value / rows[0][1]:.3f} |")


if __name__ == "__main__":
    main()

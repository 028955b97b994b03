"""../shared/tools/mailcheck for the tests: where it is, whether it is installed, its verdict.

The root conftest puts this folder on sys.path and offers `find_mailcheck()` as the
`mailcheck` fixture, which skips the test when the tool is missing or not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Verdict:
    """What one mailcheck run said; str() is the tail of its report, for assertion messages."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> str:
        """The last line: 'mailcheck: N passed, M failed' (plus ', K skipped')."""
        lines = self.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    @property
    def passed(self) -> bool:
        summary = self.summary
        return self.returncode == 0 and summary.startswith("mailcheck:") and " 0 failed" in summary

    def __str__(self) -> str:
        return self.stdout[-6000:] + self.stderr[-2000:]


@dataclass(frozen=True)
class Mailcheck:
    script: Path
    home: Path  # where install.sh put its .venv and node_modules

    def run(self, files: Sequence[Path], shots: Path) -> Verdict:
        """Judge the .eml files (about 5 s each); screenshots go to `shots`."""
        result = subprocess.run(
            [sys.executable, str(self.script), *map(str, files), "--shots", str(shots)],
            capture_output=True,
            text=True,
            env={**os.environ, "MAILCHECK_HOME": str(self.home)},
            timeout=60 + 30 * len(files),
        )
        return Verdict(result.returncode, result.stdout, result.stderr)


def find_mailcheck() -> Mailcheck:
    """The installed tool, or pytest.skip saying what is missing."""
    script = _script()
    if script is None:
        pytest.skip("mailcheck not found (../shared/tools/mailcheck/mailcheck.py)")
    home = _home(script)
    if home is None:
        pytest.skip(f"mailcheck not installed: run bash {script.parent}/install.sh")
    return Mailcheck(script, home)


def _script() -> Path | None:
    candidates = [
        os.environ.get("MAILCHECK_SCRIPT", ""),
        str(ROOT.parent / "shared" / "tools" / "mailcheck" / "mailcheck.py"),
        "/work/shared/tools/mailcheck/mailcheck.py",
    ]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def _home(script: Path) -> Path | None:
    """Where install.sh put mailcheck's venv and node_modules (the places it looks itself)."""
    candidates = [
        os.environ.get("MAILCHECK_HOME", ""),
        str(script.parent),
        str(Path.home() / ".cache" / "mailcheck"),
    ]
    for candidate in filter(None, candidates):
        home = Path(candidate).expanduser()
        if (home / ".venv" / "bin" / "python").exists() and (home / "node_modules").is_dir():
            return home
    return None

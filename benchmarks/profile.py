"""Sampling one worker with py-spy during a run, and summarising where its CPU goes."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")

# Where a frame's time is booked, first match wins (checked from the leaf upwards).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SMTP client (transport.py)", ("newsletter/transport.py",)),
    ("socket I/O", ("socket.py", "ssl.py", "smtplib.py")),
    ("message substitution (messages.py)", ("newsletter/messages.py",)),
    ("tokens (HMAC)", ("newsletter/tokens.py", "hmac.py", "itsdangerous")),
    ("PostgreSQL driver", ("psycopg",)),
    ("SQLAlchemy", ("sqlalchemy",)),
    ("dispatch bookkeeping (dispatch/)", ("newsletter/dispatch/",)),
    ("Celery / kombu / redis", ("celery", "kombu", "billiard", "redis", "vine")),
    ("rendering (Jinja2, premailer)", ("jinja2", "premailer", "rendering.py", "cssutils")),
)


@dataclass
class Profile:
    samples: int
    categories: list[tuple[str, float]]
    leaves: list[tuple[str, float]]

    def lines(self) -> list[str]:
        out = [f"py-spy samples of one worker: {self.samples}", "", "where the CPU goes:"]
        out += [f"  {share:5.1f} %  {name}" for name, share in self.categories]
        out += ["", "hottest functions (self time):"]
        out += [f"  {share:5.1f} %  {name}" for name, share in self.leaves]
        return out


class PySpy:
    """py-spy record of a process and its children, in py-spy's raw (collapsed) format."""

    def __init__(self, pid: int, out: Path, rate: int = 250) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def executable() -> str | None:
        """py-spy on PATH, or beside this interpreter (a venv that is not activated)."""
        beside = Path(sys.executable).parent / "py-spy"
        return shutil.which("py-spy") or (str(beside) if beside.exists() else None)

    @classmethod
    def available(cls) -> bool:
        return cls.executable() is not None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.executable() or "py-spy", "record", "--pid", str(self.pid), "--subprocesses",
             "--rate", str(self.rate), "--format", "raw", "--output", str(self.out),
             "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip

    def stop(self) -> Profile | None:
        if self.proc is None:
            return None
        # py-spy writes its file when interrupted.
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None
        if not self.out.exists():
            print("py-spy wrote nothing:", err.decode(errors="replace")[-500:])
            return None
        return summarise(self.out.read_text())


def _short(frame: str) -> tuple[str, str]:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    path = m["file"]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return m["func"], path


def _category(frames: list[tuple[str, str]]) -> str:
    for _, path in reversed(frames):
        for name, markers in CATEGORIES:
            if any(marker in path for marker in markers):
                return name
    return "other (interpreter, stdlib)"


def summarise(raw: str, top: int = 12) -> Profile:
    """Shares of samples by category (innermost known frame) and by leaf function."""
    by_category: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f.strip()]
        # py-spy puts "process <pid>:..." and thread frames first: keep code frames only.
        frames = [f for f in frames if f[1]]
        if not frames:
            continue
        total += count
        by_category[_category(frames)] += count
        func, path = frames[-1]
        by_leaf[f"{func} ({path})"] += count
    if not total:
        return Profile(0, [], [])
    return Profile(
        samples=total,
        categories=[(k, 100 * v / total) for k, v in by_category.most_common()],
        leaves=[(k, 100 * v / total) for k, v in by_leaf.most_common(top)],
    )

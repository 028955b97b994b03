"""CPU time and resident memory of process trees, read from /proc while they run."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, in seconds."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[21]) * PAGE_SIZE if fields else 0


def children_map() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process on the machine."""
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields:
            kids.setdefault(int(fields[1]), []).append(int(name))
    return kids


def tree(root: int, kids: dict[int, list[int]] | None = None) -> list[int]:
    """The root pid and all its descendants that are alive now."""
    kids = children_map() if kids is None else kids
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


@dataclass
class TreeStats:
    """What the sampler learnt about one process tree."""

    root: int
    # Last CPU reading per pid: a child that exits keeps its final value.
    cpu: dict[int, float] = field(default_factory=dict)
    cpu_at_mark: dict[int, float] = field(default_factory=dict)
    peak_rss: int = 0
    peak_rss_since_mark: int = 0
    pids: set[int] = field(default_factory=set)

    def cpu_since_mark(self) -> float:
        return sum(v - self.cpu_at_mark.get(pid, 0.0) for pid, v in self.cpu.items())


class TreeSampler:
    """Samples CPU and summed RSS of several process trees every `interval` seconds."""

    def __init__(self, roots: list[int], interval: float = 0.1) -> None:
        self.stats = {root: TreeStats(root) for root in roots}
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)

    def __enter__(self) -> TreeSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        kids = children_map()
        with self._lock:
            for st in self.stats.values():
                rss = 0
                for pid in tree(st.root, kids):
                    cpu = cpu_seconds(pid)
                    if cpu is None:
                        continue
                    st.cpu[pid] = cpu
                    st.pids.add(pid)
                    rss += rss_bytes(pid)
                st.peak_rss = max(st.peak_rss, rss)
                st.peak_rss_since_mark = max(st.peak_rss_since_mark, rss)

    def mark(self) -> None:
        """Start a measuring window: CPU is counted from here, peak RSS restarts."""
        self.sample()
        with self._lock:
            for st in self.stats.values():
                st.cpu_at_mark = dict(st.cpu)
                st.peak_rss_since_mark = 0
        self.sample()


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    """Poll `predicate` until true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())

"""Private services for one benchmark run: redis-server and Postfix's smtp-sink."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from benchmarks.procs import cpu_seconds, wait_for

SMTP_SINK = "smtp-sink"
SMTP_SOURCE = "smtp-source"
POSTFIX_DIRS = ("/usr/sbin", "/usr/lib/postfix/sbin")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def find_postfix_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in POSTFIX_DIRS:
        path = Path(folder) / name
        if path.exists():
            return str(path)
    return None


def ensure_postfix(install: bool = True) -> None:
    """Make smtp-sink and smtp-source available: apt-get install postfix if they are missing."""
    if find_postfix_tool(SMTP_SINK) and find_postfix_tool(SMTP_SOURCE):
        return
    if not install:
        raise RuntimeError("smtp-sink is missing: install the Debian package `postfix`")
    print("installing postfix (for smtp-sink and smtp-source)...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "postfix"], check=True, env=env)
    # The package may start the postfix master daemon; the benchmark wants only its tools.
    subprocess.run(["postfix", "stop"], env=env, capture_output=True)
    if not find_postfix_tool(SMTP_SINK):
        raise RuntimeError("postfix was installed but smtp-sink is still missing")


class RedisServer:
    """A redis-server on a free port that keeps nothing on disk."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisServer:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if not wait_for(lambda: _port_open(self.port), 10):
            raise RuntimeError("redis-server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """Terminate one process we started, killing it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class SmtpSink:
    """Postfix's smtp-sink on a free loopback port, counting messages as they arrive.

    smtp-sink -c writes "sess=.. quit=.. mesg=N\\r" after each message; a reader thread turns
    that into a count and the wall-clock time of the first message after `mark()`.
    """

    def __init__(self, backlog: int = 256) -> None:
        self.port = free_port()
        self.backlog = backlog
        self.proc: subprocess.Popen[bytes] | None = None
        self.count = 0
        self._mark_count = 0
        self.first_after_mark: float | None = None
        self.last_at: float | None = None
        self._rchar_mark = 0
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> SmtpSink:
        sink = find_postfix_tool(SMTP_SINK)
        if sink is None:
            raise RuntimeError("smtp-sink is missing: install the Debian package `postfix`")
        cmd = [sink, "-c"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
        cmd += [self.address, str(self.backlog)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._thread = threading.Thread(target=self._read, name="smtp-sink", daemon=True)
        self._thread.start()
        if not wait_for(lambda: _port_open(self.port), 10):
            raise RuntimeError("smtp-sink did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        tail = b""
        while chunk := os.read(fd, 65536):
            now = time.time()
            tail = (tail + chunk)[-64:]
            # The counter after the last complete "mesg=N\r" in what we have read so far.
            end = tail.rfind(b"\r")
            start = tail.rfind(b"mesg=", 0, end)
            if end < 0 or start < 0:
                continue
            self.count = int(tail[start + 5 : end])
            self.last_at = now
            if self.first_after_mark is None and self.count > self._mark_count:
                self.first_after_mark = now

    def mark(self) -> None:
        """Start counting afresh: first_after_mark and received() refer to messages from here."""
        self._mark_count = self.count
        self.first_after_mark = None
        self._rchar_mark = self.bytes_read()

    def received(self) -> int:
        return self.count - self._mark_count

    def bytes_read(self) -> int:
        """Bytes smtp-sink has read from its sockets (SMTP commands and message data)."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/io") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
        return 0

    def bytes_since_mark(self) -> int:
        return self.bytes_read() - self._rchar_mark

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return cpu_seconds(self.proc.pid) or 0.0


def smtp_source_ceiling(
    sink: SmtpSink, messages: int, size: int, sessions: int = 4
) -> tuple[float, float]:
    """Postfix's smtp-source pushing `messages` of `size` bytes over reused sessions.

    Returns (messages per second, seconds), timed until the sink has counted them all.
    """
    source = find_postfix_tool(SMTP_SOURCE)
    if source is None:
        raise RuntimeError("smtp-source is missing: install the Debian package `postfix`")
    sink.mark()
    start = time.time()
    subprocess.run(
        [source, "-d", "-s", str(sessions), "-m", str(messages), "-l", str(size), sink.address],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wait_for(lambda: sink.received() >= messages, 10, 0.01)
    end = sink.last_at or time.time()
    elapsed = max(end - start, 1e-9)
    return messages / elapsed, elapsed

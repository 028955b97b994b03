"""`newsletter serve` as deployments run it: several processes, the links' address, the tick."""

from __future__ import annotations

import ctypes
import http.client
import mailbox
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from newsletter import dispatch, subscriptions
from newsletter.editions import import_edition_file
from newsletter.jobs import InProcessJobs
from newsletter.models import EditionStatus, EventSource, SchedulerState, utcnow
from newsletter.paths import sample_data_dir
from newsletter.runtime import Runtime

pytestmark = pytest.mark.slow
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PIDFD_GETFD = 438  # the syscall number (x86-64 and arm64 alike)


def wait_for(predicate: Callable[[], object], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def children(pid: int) -> list[str]:
    """The command lines of a process's children (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            found.append(cmdline.decode(errors="replace"))
    return found


@sqlite_only
def test_links_follow_the_port_served(serve, free_tcp_port: int, runtime: Runtime) -> None:  # type: ignore[no-untyped-def]
    """Scenario: no base URL is set and serve runs on port P: it says so, and the link in the
    confirmation email goes to port P, not to the default 8000."""
    server = serve(free_tcp_port, NEWSLETTER_BASE_URL="")
    here = f"http://127.0.0.1:{free_tcp_port}"
    answer = httpx.post(
        here + "/en/subscribe", data={"email": "new@example.org", "languages": ["en"]}
    )
    assert answer.status_code == 200

    def confirmation() -> str | None:
        outbox = runtime.settings.outbox
        # The confirmation goes out after the answer: the Maildir may be half made right now.
        ready = (outbox / "cur").exists()
        messages = list(mailbox.Maildir(outbox, create=False)) if ready else []
        return messages[0].as_string() if messages else None

    wait_for(confirmation, what="the confirmation email")
    assert f"{here}/confirm/" in (confirmation() or "").replace("=\n", "")
    output = server.stop()
    assert f"serving {here} on {here} (1 process)" in output
    assert "note:" not in output


@sqlite_only
def test_a_base_url_elsewhere_is_said_in_one_line(serve, free_tcp_port: int) -> None:  # type: ignore[no-untyped-def]
    """Scenario: NEWSLETTER_BASE_URL names the public address, serve listens elsewhere (a
    proxy in between): one line says where links point; when they agree, nothing is said."""
    output = serve(free_tcp_port, NEWSLETTER_BASE_URL="https://news.example.org").stop()
    notes = [line for line in output.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: emailed links point at NEWSLETTER_BASE_URL https://news.example.org, not at "
        f"http://127.0.0.1:{free_tcp_port} where this server listens (right behind a proxy "
        "that forwards there)"
    ]
    same = serve(free_tcp_port, NEWSLETTER_BASE_URL=f"http://127.0.0.1:{free_tcp_port}").stop()
    assert "note:" not in same


@sqlite_only
def test_a_port_in_use_is_one_line(cli, free_tcp_port: int) -> None:  # type: ignore[no-untyped-def]
    """Scenario: something already listens on the port: one clear line, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_tcp_port))
        taken.listen()
        result = cli("serve", "--port", str(free_tcp_port), "--workers", "1")
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{free_tcp_port}: it is in use" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@sqlite_only
def test_workers_share_one_port(serve, free_tcp_port: int) -> None:  # type: ignore[no-untyped-def]
    """Scenario: `serve --workers 2` runs two processes on one port, both answering."""
    server = serve(free_tcp_port, "--workers", "2")
    workers = [c for c in children(server.process.pid) if "multiprocessing" in c]
    assert len([c for c in workers if "spawn_main" in c]) == 2, workers
    with httpx.Client(base_url=server.url) as http:
        assert all(http.get("/en/").status_code == 200 for _ in range(50))
    assert "(2 processes)" in server.stop()


def _served_with_nodelay(pids: list[int], port: int, client_port: int) -> bool:
    """TCP_NODELAY on the socket a server process holds for our connection (read through a
    copy of its descriptor: pidfd_getfd, Linux 5.6)."""
    inode = _socket_inode(port, client_port)
    libc = ctypes.CDLL(None, use_errno=True)
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) != f"socket:[{inode}]":
                    continue
            except FileNotFoundError:
                continue
            pidfd = os.pidfd_open(pid)
            try:
                copy = libc.syscall(PIDFD_GETFD, pidfd, int(fd.name), 0)
                assert copy >= 0, os.strerror(ctypes.get_errno())
            finally:
                os.close(pidfd)
            with socket.socket(fileno=copy) as served:
                return served.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    raise AssertionError(f"no server process holds the connection from port {client_port}")


def _socket_inode(local_port: int, remote_port: int) -> str:
    """The inode of the server side of a loopback TCP connection (/proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == (
            remote_port
        ):
            return inode
    raise AssertionError(f"no connection {local_port} <- {remote_port} in /proc/net/tcp")


@sqlite_only
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_workers_answer_without_nagle(  # type: ignore[no-untyped-def]
    serve, free_tcp_port: int, tmp_path: Path, loop: str
) -> None:
    """Scenario: `serve --workers 2` with uvloop, and where uvloop is missing (asyncio): the
    connections its worker processes accept have TCP_NODELAY, else every keep-alive answer
    waits 40 ms for the client's delayed ACK (uvicorn writes headers and body apart)."""
    env = {}
    if loop == "asyncio":  # uvloop cannot be imported: uvicorn falls back to asyncio's loop
        hidden = tmp_path / "no-uvloop" / "uvloop"
        hidden.mkdir(parents=True)
        (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
        env["PYTHONPATH"] = str(hidden.parent)
    server = serve(free_tcp_port, "--workers", "2", **env)
    workers = [
        int(pid)
        for task in Path(f"/proc/{server.process.pid}/task").iterdir()
        for pid in (task / "children").read_text().split()
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(workers) == 2
    # Each worker runs the loop the scenario names.
    for pid in workers:
        assert ("uvloop" in Path(f"/proc/{pid}/maps").read_text()) == (loop == "uvloop")
    clients = [http.client.HTTPConnection("127.0.0.1", free_tcp_port) for _ in range(4)]
    try:
        for client in clients:
            for _ in range(2):  # keep-alive: the second answer on the same connection
                client.request("GET", "/static/site.css")
                answer = client.getresponse()
                assert answer.status == 200 and answer.read()
            assert client.sock is not None
            client_port = client.sock.getsockname()[1]
            assert _served_with_nodelay(workers, free_tcp_port, client_port)
    finally:
        for client in clients:
            client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own (the shared one is never flushed or filled)."""
    import sys

    sys.path.append(str(Path(__file__).parents[1] / "dispatch"))
    from dispatch_kit import RedisServer

    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@sqlite_only
def test_two_serve_processes_share_one_rate_limit(  # type: ignore[no-untyped-def]
    serve, free_tcp_port_factory, private_redis: str
) -> None:
    """Scenario: two servers behind one proxy, with Redis: one client address gets its 10
    subscriptions an hour in all, whichever server its requests reach."""
    env = {"NEWSLETTER_BROKER_URL": private_redis, "FORWARDED_ALLOW_IPS": "127.0.0.1"}
    servers = [serve(free_tcp_port_factory(), **env) for _ in range(2)]

    def subscribe(n: int, client_ip: str) -> int:
        answer = httpx.post(
            servers[n % 2].url + "/en/subscribe",
            data={"email": f"r{n}@example.org", "languages": ["en"]},
            headers={"X-Forwarded-For": client_ip},
            timeout=30,
        )
        return answer.status_code

    codes = [subscribe(n, "203.0.113.9") for n in range(12)]
    assert codes == [200] * 10 + [429] * 2
    assert subscribe(99, "198.51.100.1") == 200  # another client is not held back


def _scheduled_edition(runtime: Runtime, readers: int) -> str:
    """The sample week scheduled a moment ago, for `readers` active readers."""
    with runtime.session() as session:
        for n in range(readers):
            subscriptions.add_subscriber(
                session,
                runtime.settings.secret_key,
                f"reader{n}@example.org",
                "en",
                confirmed=True,
                source=EventSource.staff,
            )
        week = import_edition_file(session, sample_data_dir() / "2020-W05.yaml").week
    with runtime.session() as session:
        held = InProcessJobs(lambda name, kwargs: None)
        at = utcnow() + timedelta(seconds=1)
        dispatch.start_send(session, runtime.settings, week, at=at, jobs=held)
    return week


def test_one_tick_for_two_serve_processes(serve, free_tcp_port_factory, runtime: Runtime) -> None:  # type: ignore[no-untyped-def]
    """Scenario: no broker, two `serve` processes of one installation, an edition scheduled:
    it goes out once (one email per reader), one process ticks, and when that one stops the
    other takes over."""
    week = _scheduled_edition(runtime, readers=3)
    env = {"NEWSLETTER_TICK_EVERY": "0.5", "NEWSLETTER_BASE_URL": ""}
    servers = [serve(free_tcp_port_factory(), **env) for _ in range(2)]

    def status() -> EditionStatus:
        with runtime.session() as session:
            return dispatch.progress(session, week).status

    wait_for(lambda: status() is EditionStatus.sent, what="the scheduled send")
    time.sleep(1.5)  # more ticks: the other process must still not send
    outbox = mailbox.Maildir(runtime.settings.outbox, create=False)
    recipients = sorted(str(m["To"]) for m in outbox)
    assert recipients == [f"reader{n}@example.org" for n in range(3)]
    took = [s for s in servers if "took the tick lease" in s.output()]
    assert len(took) == 1
    health = httpx.get(servers[0].url + "/healthz").json()
    assert health["scheduler"] == "running"

    holder, other = took[0], next(s for s in servers if s is not took[0])
    holder.stop()
    wait_for(lambda: "took the tick lease" in other.output(), timeout=15, what="a takeover")
    with runtime.session() as session:
        state = session.scalar(select(SchedulerState))
        assert state is not None and state.last_tick_at is not None
        first_tick = state.last_tick_at
    wait_for(lambda: _last_tick(runtime) > first_tick, timeout=10, what="the next tick")


def _last_tick(runtime: Runtime):  # type: ignore[no-untyped-def]
    with runtime.session() as session:
        return session.scalar(select(SchedulerState.last_tick_at))

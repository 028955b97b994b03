"""uvicorn for `newsletter serve`: one process, or N worker processes on one TCP socket whose
connections answer without Nagle's delay whatever the event loop.

Why not plain `uvicorn.run`: with workers > 1 it binds the port in the parent
(`Config.bind_socket`) as `socket.socket(family)`, whose `proto` is 0. Accepted sockets copy
the listener's `proto`, and asyncio's transports set TCP_NODELAY only on sockets whose `proto`
is IPPROTO_TCP. uvicorn writes a response's headers and body with two send() calls, so with
Nagle on the body waits for the client to ACK the headers, which Linux delays by 40 ms: every
keep-alive request costs 44 ms, and two workers served about 700 req/s of anything, the
stylesheet included (one worker binds through asyncio itself, from getaddrinfo, with proto 6;
uvloop sets TCP_NODELAY on every TCP connection, so the asyncio loop is where it shows).
Reported upstream as Kludex/uvicorn#3149; remove TcpConfig once uvicorn binds with IPPROTO_TCP.
"""

from __future__ import annotations

import socket
import sys

from uvicorn import Config, Server
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

INET = (socket.AF_INET, socket.AF_INET6)


class TcpConfig(Config):
    """uvicorn's Config, whose socket for the worker processes says it is TCP."""

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family not in INET or sock.proto == socket.IPPROTO_TCP:
            return sock
        # The same file descriptor (bound, inheritable), under an object that names the
        # protocol: it travels to each worker with that proto, and so do accepted sockets.
        return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())


def run(config: TcpConfig) -> None:
    """What `uvicorn.run` does with an app given by import path, on our config."""
    server = Server(config)
    try:
        if config.workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    if config.workers == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)

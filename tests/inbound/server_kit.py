"""Runs an InboundServer on its own event loop in a thread, on a free port, for one test."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from newsletter.inbound.server import InboundServer


class RunningServer:
    """`with RunningServer(server) as port:` serves until the block ends."""

    def __init__(self, server: InboundServer) -> None:
        self.server = server
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future[Any] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _started(self, host: str, port: int) -> None:
        self.port = port
        self._ready.set()

    def _main(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = self._loop.create_future()
            await self.server.serve("127.0.0.1", 0, started=self._started, stop=self._stop)

        try:
            asyncio.run(serve())
        except BaseException as exc:  # surfaced to the test in __enter__
            self._error = exc
            self._ready.set()

    def __enter__(self) -> int:
        self._thread.start()
        assert self._ready.wait(10), "the inbound server did not start"
        if self._error:
            raise self._error
        return self.port

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(lambda: self._stop.done() or self._stop.set_result(None))  # type: ignore[union-attr]
        self._thread.join(10)

"""`newsletter inbound --listen HOST:PORT [--lmtp]`: an SMTP or LMTP server for returned mail.

It accepts a recipient only when it is the inbound address or one of its +token forms with a
token that verifies; every other RCPT gets 550, so it can never relay. Limits: message size
(NEWSLETTER_INBOUND_MAX_BYTES, announced with SIZE, 552 past it), recipients per message,
simultaneous connections (421 past them) and an idle timeout. The database work runs in a
thread, off the event loop; a message is acknowledged only once it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from newsletter.inbound.intake import Intake

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 20
MAX_RECIPIENTS = 10
TIMEOUT = 60.0  # seconds a client may stay silent
PURGE_EVERY = 3600.0  # seconds between two erasures of raw messages past the keep period


class Gate:
    """How many connections are open; belongs to one server (no module state)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.lock = threading.Lock()

    def enter(self) -> bool:
        with self.lock:
            if self.open >= self.limit:
                return False
            self.open += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.open -= 1


class InboundHandler:
    """The aiosmtpd handler: RCPT is checked against our addresses, DATA is stored."""

    def __init__(self, intake: Intake, *, lmtp: bool, max_recipients: int) -> None:
        self.intake = intake
        self.lmtp = lmtp
        self.max_recipients = max_recipients

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        if not self.intake.accepts(address):
            return "550 5.1.1 No such mailbox here (this server does not relay)"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # aiosmtpd hands bytes unless told to decode
            raw = raw.encode("utf-8", "surrogateescape")
        loop = asyncio.get_running_loop()
        replies = []
        for recipient in envelope.rcpt_tos:
            take = partial(
                self.intake.take,
                raw,
                recipient=recipient,
                mail_from=envelope.mail_from,
                channel="lmtp" if self.lmtp else "smtp",
            )
            try:
                await loop.run_in_executor(None, take)
            except Exception as exc:  # not stored: the sending server keeps it and retries
                log.error("could not store an inbound message: %s", exc)
                replies.append("451 4.3.0 Could not store the message; try again later")
            else:
                replies.append("250 2.0.0 OK")
        if self.lmtp:  # LMTP answers once per recipient (RFC 2033 §4.2)
            return "\r\n".join(replies)
        failed = [r for r in replies if not r.startswith("250")]
        return failed[0] if failed else replies[0]


def _limited(base: type[SMTP]) -> type[SMTP]:
    class Limited(base):  # type: ignore[valid-type, misc]
        """Refuses a connection past the gate's limit with 421 before the greeting."""

        def __init__(self, handler: InboundHandler, *, gate: Gate, **kwargs: Any) -> None:
            super().__init__(handler, **kwargs)
            self._gate = gate
            self._admitted = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self._admitted = self._gate.enter()
            if not self._admitted:
                transport.write(b"421 4.7.0 Too many connections, try again later\r\n")  # type: ignore[attr-defined]
                transport.close()
                return
            super().connection_made(transport)

        def connection_lost(self, error: Exception | None) -> None:
            if not self._admitted:
                return
            self._gate.leave()
            super().connection_lost(error)

    return Limited


_SMTP = _limited(SMTP)
_LMTP = _limited(LMTP)


class InboundServer:
    """One listener: build it once, then serve() it on an event loop."""

    def __init__(
        self,
        intake: Intake,
        *,
        lmtp: bool = False,
        max_connections: int = MAX_CONNECTIONS,
        max_recipients: int = MAX_RECIPIENTS,
        timeout: float = TIMEOUT,
    ) -> None:
        self.intake = intake
        self.lmtp = lmtp
        self.gate = Gate(max_connections)
        self.handler = InboundHandler(intake, lmtp=lmtp, max_recipients=max_recipients)
        self.timeout = timeout

    def protocol(self) -> SMTP:
        cls: Any = _LMTP if self.lmtp else _SMTP
        return cls(
            self.handler,
            gate=self.gate,
            data_size_limit=self.intake.settings.inbound_max_bytes,
            hostname=self.intake.address.domain,
            ident="newsletter inbound",
            timeout=self.timeout,
            loop=asyncio.get_running_loop(),
        )

    async def serve(
        self,
        host: str,
        port: int,
        *,
        started: Callable[[str, int], None] | None = None,
        stop: Awaitable[Any] | None = None,
    ) -> None:
        """Listen until `stop` completes (or forever), erasing old raw messages hourly."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self.protocol, host, port)
        bound = server.sockets[0].getsockname()
        if started:
            started(bound[0], bound[1])
        purge = loop.create_task(self._purge_hourly())
        try:
            async with server:
                if stop is None:
                    await server.serve_forever()
                else:
                    await stop
        finally:
            purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge

    async def _purge_hourly(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                erased = await loop.run_in_executor(None, self.intake.purge)
                if erased:
                    log.info("erased %s raw inbound messages past the keep period", erased)
            except Exception as exc:  # the database may be away for a while: try again later
                log.warning("could not erase old inbound messages: %s", exc)
            await asyncio.sleep(PURGE_EVERY)


def run(server: InboundServer, host: str, port: int, started: Callable[[str, int], None]) -> None:
    """Serve until SIGINT or SIGTERM (the CLI's foreground process)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop: asyncio.Future[None] = loop.create_future()

        def request_stop() -> None:
            if not stop.done():
                stop.set_result(None)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, request_stop)
        await server.serve(host, port, started=started, stop=stop)

    asyncio.run(main())

"""Where mail goes: one Transport interface, an SMTP client and a Maildir outbox.

A transport takes prepared message bytes (rendered once per variant, personalised by
substitution) and returns one SendResult per recipient. It never raises for a recipient:
failures come back typed as temporary (retry later) or permanent (5xx for that address).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import mailbox
import re
import smtplib
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import parse_qs, unquote, urlsplit

from newsletter.config import Settings
from newsletter.errors import ConfigError

DEFAULT_TIMEOUT = 30.0
_MAX_LINE = 8192  # as smtplib


class Outcome(enum.StrEnum):
    ok = "ok"
    temporary = "temporary"  # 4xx, dropped connection, server down: retry later
    permanent = "permanent"  # 5xx: this message will never be accepted


@dataclass(frozen=True, slots=True)
class SendResult:
    """What became of one message; `bounce` means the recipient address itself was refused.

    `blocked` means the fault is not the reader's but the relay's or the outbox's: with a
    permanent outcome (outbox unusable, disk full, SMTP authentication or TLS refused) the
    send must stop; with a temporary one (relay down) it is retried, then stops.
    """

    outcome: Outcome
    reply: str = ""
    bounce: bool = False
    blocked: bool = False


SENT = SendResult(Outcome.ok)

# A message: its bytes, or a list of buffers that make it up when written one after another
# (the SMTP client hands them to the socket without joining them).
MessageData = bytes | list[bytes]
# (recipient address, message[, envelope sender]): the message dot-stuffed for SMTP when the
# transport's `dot_stuffed` is true. A third item, when given and not None, is that message's
# own envelope sender (MAIL FROM, e.g. a VERP address); otherwise send()'s `envelope_from`.
Item = tuple[str, MessageData] | tuple[str, MessageData, str | None]
Batch = Sequence[Item]


def sender_of(item: Item, default: str) -> str:
    """The envelope sender of one batch item: its own, or the batch's default."""
    return (item[2] or default) if len(item) > 2 else default  # type: ignore[misc]


_LINE_START_DOT = re.compile(rb"(?m)^\.")


def dot_stuff(data: bytes) -> bytes:
    """SMTP DATA transparency (RFC 5321 4.5.2): a line that starts with a dot gets a second
    one. The one place it is done: SmtpTransport.frame uses it per message, and a prepared
    variant (messages.MessageTemplate) once, so that its substitutions need none."""
    return _LINE_START_DOT.sub(b"..", data)


def joined(data: MessageData) -> bytes:
    return data if isinstance(data, bytes) else b"".join(data)


class Transport(Protocol):
    """A context manager (closed on exit; send() opens it), send batches, close."""

    # True: send() wants MessageTemplate.render_smtp bytes; False: MessageTemplate.render.
    dot_stuffed: bool

    def frame(self, data: bytes) -> bytes:
        """A whole message made ready for send() (SMTP: dot-stuffed, ending with CRLF)."""
        ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def send(self, envelope_from: str, batch: Batch) -> list[SendResult]:
        """One result per item, in order; `envelope_from` is the MAIL FROM of items without
        their own."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _TransportBase:
    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        # Opened by the first send(), which turns a refused connection into results.
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def make_transport(settings: Settings) -> Transport:
    """SMTP when NEWSLETTER_SMTP_URL is set (over NEWSLETTER_SMTP_CONNECTIONS connections),
    otherwise the Maildir outbox."""
    if settings.smtp_url and settings.smtp_connections > 1:
        return SmtpLanes(settings.smtp_url, settings.smtp_connections)
    if settings.smtp_url:
        return SmtpTransport(settings.smtp_url)
    return MaildirTransport(settings.outbox)


def destination(settings: Settings) -> str:
    """Where mail goes, in words for a person (never the SMTP credentials)."""
    if settings.smtp_url:
        options = SmtpOptions.from_url(settings.smtp_url)
        return f"the SMTP server {options.host}:{options.port}"
    return f"the outbox folder {Path(settings.outbox).resolve()}"


class MaildirTransport(_TransportBase):
    """Delivers into a Maildir folder (made if missing): the embedded default."""

    dot_stuffed = False

    def frame(self, data: bytes) -> bytes:
        return data

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._box: mailbox.Maildir | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._box = mailbox.Maildir(self.path, create=True)

    def close(self) -> None:
        self._box = None

    def send(self, envelope_from: str, batch: Batch) -> list[SendResult]:
        """Deliver each message; an outbox that cannot be written stops the batch, blocked:
        a full disk or a broken folder is never the reader's fault."""
        results: list[SendResult] = []
        try:
            if self._box is None:
                self.open()
            assert self._box is not None
            for item in batch:
                rcpt, data = item[0], item[1]
                # What a local MDA records: the envelope, then the message with Unix line ends.
                sender = sender_of(item, envelope_from)
                envelope = f"Return-Path: <{sender}>\nDelivered-To: {rcpt}\n".encode()
                self._box.add(envelope + joined(data).replace(b"\r\n", b"\n"))
                results.append(SENT)
        except OSError as exc:
            self._box = None
            full = " the disk is full:" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
            unusable = SendResult(
                Outcome.permanent, f"outbox {self.path} unusable:{full} {exc}"[:500], blocked=True
            )
            results.extend([unusable] * (len(batch) - len(results)))
        return results


class _Dropped(Exception):
    """The server closed (421) or lost the connection; the rest needs a new one."""


@dataclass(frozen=True)
class SmtpOptions:
    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None
    timeout: float
    verify: bool

    @classmethod
    def from_url(cls, url: str) -> SmtpOptions:
        """smtp://[user:pass@]host[:port][?timeout=30&verify=0], or smtps://… (implicit TLS)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(f"not an SMTP URL: {url!r} (smtp://host:port or smtps://host)")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            timeout = float(query.get("timeout", DEFAULT_TIMEOUT))
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"bad SMTP URL {url!r}: {exc}") from exc
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=port or (465 if implicit else 25),
            implicit_tls=implicit,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
            verify=query.get("verify", "1").lower() not in ("0", "no", "false"),
        )


class SmtpTransport(_TransportBase):
    """An SMTP client for prepared, dot-stuffed messages over one reused connection.

    Uses ESMTP PIPELINING (RFC 2920) when announced: the previous message's body and the next
    message's MAIL, RCPT and DATA leave in one write. Falls back to lock-step otherwise.
    """

    dot_stuffed = True

    def frame(self, data: bytes) -> bytes:
        stuffed = dot_stuff(data)
        return stuffed if stuffed.endswith(b"\r\n") else stuffed + b"\r\n"

    def __init__(self, url: str, *, local_hostname: str | None = None) -> None:
        self.options = SmtpOptions.from_url(url)
        self.local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None
        self._pipelining = False
        self._mail_options = b""

    # -- connection -------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.options.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def open(self) -> None:
        """Connect, EHLO, STARTTLS when offered, AUTH when the URL has a user."""
        if self._smtp is not None:
            return
        opts = self.options
        smtp: smtplib.SMTP
        if opts.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                opts.host,
                opts.port,
                local_hostname=self.local_hostname,
                timeout=opts.timeout,
                context=self._tls_context(),
            )
        else:
            smtp = smtplib.SMTP(
                opts.host, opts.port, local_hostname=self.local_hostname, timeout=opts.timeout
            )
        try:
            smtp.ehlo()
            if not opts.implicit_tls and smtp.has_extn("starttls"):
                try:
                    smtp.starttls(context=self._tls_context())
                except smtplib.SMTPResponseException as exc:
                    # Offered, then refused: going on in clear would hand readers' addresses
                    # to the wire unencrypted, so this stops the send like a failed handshake.
                    raise StartTlsRefused(exc.smtp_code, exc.smtp_error) from exc
                smtp.ehlo()
            if opts.username:
                try:
                    smtp.login(opts.username, opts.password or "")
                except smtplib.SMTPException as exc:
                    if type(exc) is not smtplib.SMTPException:
                        raise
                    # "No suitable authentication method found": nothing in common to speak.
                    raise smtplib.SMTPAuthenticationError(0, str(exc)) from exc
        except BaseException:
            _close_quietly(smtp)
            raise
        self._smtp = smtp
        self._pipelining = smtp.has_extn("pipelining")
        self._mail_options = b" BODY=8BITMIME" if smtp.has_extn("8bitmime") else b""

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.quit()
            _close_quietly(smtp)

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            _close_quietly(smtp)

    # -- sending ----------------------------------------------------------------------

    def send(self, envelope_from: str, batch: Batch) -> list[SendResult]:
        """Send each message to its recipient; reconnect after a drop if the last try got on."""
        results: list[SendResult | None] = [None] * len(batch)
        run_in_turn([self.steps(envelope_from, batch, range(len(batch)), results)])
        return finished(results)

    def steps(
        self,
        envelope_from: str,
        batch: Batch,
        positions: Sequence[int],
        results: list[SendResult | None],
    ) -> Iterator[None]:
        """Send the items at `positions`, filling in their results; pause (yield) after each
        write, while the relay works, so that another connection can be served meanwhile."""
        start = 0
        while start < len(positions):
            done_before = start
            try:
                self.open()
            except _REFUSED_US as exc:
                # Our credentials or TLS, not any reader: no message can go until staff act.
                self._drop()
                refused = SendResult(Outcome.permanent, _refusal(exc), blocked=True)
                for i in positions[start:]:
                    results[i] = refused
                break
            except OSError as exc:
                self._drop()
                # Relay down, or 421 at the greeting: retried; not the readers' fault.
                down = SendResult(Outcome.temporary, _describe(exc), blocked=True)
                for i in positions[start:]:
                    results[i] = down
                break
            send = self._send_pipelined if self._pipelining else self._send_lockstep
            try:
                yield from send(envelope_from, batch, positions[start:], results)
            except (OSError, _Dropped) as exc:
                self._drop()
                reply = _describe(exc)
                start = next(
                    (k for k, i in enumerate(positions) if results[i] is None), len(positions)
                )
                progressed = any(
                    (r := results[i]) is not None and r.outcome is not Outcome.temporary
                    for i in positions[done_before:start]
                )
                if not progressed:
                    # Server down or refusing us: the rest waits for the retry.
                    for i in positions[start:]:
                        results[i] = SendResult(Outcome.temporary, reply, blocked=True)
                    break
                continue
            break

    def _mail_commands(self, envelope_from: str) -> Callable[[Item], bytes]:
        """MAIL FROM for each item: built once for the batch's sender, per item for its own."""
        options = self._mail_options
        default = b"MAIL FROM:<" + envelope_from.encode() + b">" + options + b"\r\n"

        def mail_cmd(item: Item) -> bytes:
            own = item[2] if len(item) > 2 else None  # type: ignore[misc]
            if not own:
                return default
            return b"MAIL FROM:<" + own.encode() + b">" + options + b"\r\n"

        return mail_cmd

    def _reply(self) -> tuple[int, str]:
        """One reply, read like smtplib.getreply() without its per-line overhead."""
        smtp = self._smtp
        assert smtp is not None
        file = smtp.file
        if file is None:  # smtplib makes its reader on its first reply
            code, text = smtp.getreply()
            return code, text.decode("utf-8", "replace")
        line = file.readline(_MAX_LINE + 1)
        if line[3:4] == b" " and line[-2:] == b"\r\n" and len(line) <= _MAX_LINE:
            try:  # the usual case: one line, "250 2.0.0 Ok\r\n"
                return int(line[:3]), line[4:-2].decode("utf-8", "replace")
            except ValueError:
                pass
        lines = []
        while True:
            if not line:
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            if len(line) > _MAX_LINE:
                raise smtplib.SMTPResponseException(500, b"Line too long.")
            lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                break
            line = file.readline(_MAX_LINE + 1)
        try:
            code = int(line[:3])
        except ValueError:
            code = -1
        return code, b"\n".join(lines).decode("utf-8", "replace")

    def _send_lockstep(
        self,
        envelope_from: str,
        batch: Batch,
        positions: Sequence[int],
        results: list[SendResult | None],
    ) -> Iterator[None]:
        assert self._smtp is not None
        write = self._smtp.sock.sendall  # type: ignore[union-attr]
        mail_cmd = self._mail_commands(envelope_from)
        for i in positions:
            item = batch[i]
            rcpt, data = item[0], item[1]
            failure: SendResult | None = None
            for stage, command, expected in (
                ("mail", mail_cmd(item), 250),
                ("rcpt", b"RCPT TO:<" + rcpt.encode() + b">\r\n", 250),
                ("data", b"DATA\r\n", 354),
            ):
                write(command)
                code, text = self._reply()
                if code != expected and not (stage == "rcpt" and code == 251):
                    failure = _classify(code, text, stage)
                    break
            if failure is None:
                write(joined(data) + b".\r\n")
                yield
                code, text = self._reply()
                results[i] = SENT if 200 <= code < 300 else _classify(code, text, "data")
            else:
                results[i] = failure
            _raise_if_closing(code, text)
            if failure is not None:
                write(b"RSET\r\n")  # leave the refused transaction; the connection stays usable
                _raise_if_closing(*self._reply())

    def _send_pipelined(
        self,
        envelope_from: str,
        batch: Batch,
        positions: Sequence[int],
        results: list[SendResult | None],
    ) -> Iterator[None]:
        assert self._smtp is not None
        write = self._writer()
        mail_cmd = self._mail_commands(envelope_from)
        # Buffers to go out with the next write (the message itself is never copied), and
        # the replies they will produce.
        pending: list[bytes] = []
        final_for: int | None = None  # the message whose end-of-data reply is awaited
        ignored = 0  # replies to RSET and the like
        reply = self._reply
        for i in positions:
            item = batch[i]
            rcpt, data = item[0], item[1]
            pending.append(mail_cmd(item) + b"RCPT TO:<" + rcpt.encode() + b">\r\nDATA\r\n")
            write(pending)
            yield
            if final_for is not None:
                code, text = reply()
                results[final_for] = SENT if 200 <= code < 300 else _classify(code, text, "data")
                final_for = None
                _raise_if_closing(code, text)
            for _ in range(ignored):
                _raise_if_closing(*reply())
            ignored = 0
            failure: SendResult | None = None
            data_code = 0
            for stage, expected in (("mail", 250), ("rcpt", 250), ("data", 354)):
                code, text = reply()
                if stage == "data":
                    data_code = code
                ok = code == expected or (stage == "rcpt" and code == 251)
                if not ok and failure is None:
                    failure = _classify(code, text, stage)
                    if code == 421:
                        results[i] = failure
                        raise _Dropped(text)
            if failure is None:
                pending = [data, b".\r\n"] if isinstance(data, bytes) else [*data, b".\r\n"]
                final_for = i
            else:
                results[i] = failure
                # A server that answered 354 anyway gets an empty message it will refuse.
                pending = [b".\r\nRSET\r\n" if data_code == 354 else b"RSET\r\n"]
                ignored = 2 if data_code == 354 else 1
        write(pending)
        yield
        if final_for is not None:
            code, text = reply()
            results[final_for] = SENT if 200 <= code < 300 else _classify(code, text, "data")
            _raise_if_closing(code, text)
        for _ in range(ignored):
            _raise_if_closing(*reply())

    def _writer(self) -> Callable[[list[bytes]], None]:
        """A function that writes several buffers at once.

        On a plain socket that is one sendmsg() (scatter-gather): a 50 KB message is not
        copied to glue the end-of-data mark and the next commands to it. TLS sockets have no
        sendmsg, so there the buffers are joined.
        """
        assert self._smtp is not None
        sock = self._smtp.sock
        assert sock is not None
        if isinstance(sock, ssl.SSLSocket):
            return lambda buffers: sock.sendall(b"".join(buffers))

        def sendv(buffers: list[bytes]) -> None:
            sent = sock.sendmsg(buffers)
            total = sum(map(len, buffers))
            if sent < total:  # the socket buffer was full: send the rest in order
                views = [memoryview(b) for b in buffers]
                for view in views:
                    if sent >= len(view):
                        sent -= len(view)
                        continue
                    sock.sendall(view[sent:])
                    sent = 0

        return sendv


class SmtpLanes(_TransportBase):
    """Several connections to one relay, served in turn by one thread: while the relay
    takes in a message on one, the next is already waiting on another, so it never idles
    between our replies. Items are dealt to the connections in turn; results come back in
    order."""

    dot_stuffed = True

    def __init__(self, url: str, connections: int) -> None:
        self.lanes = [SmtpTransport(url) for _ in range(connections)]

    def frame(self, data: bytes) -> bytes:
        return self.lanes[0].frame(data)

    def open(self) -> None:
        for lane in self.lanes:
            lane.open()

    def close(self) -> None:
        for lane in self.lanes:
            lane.close()

    def send(self, envelope_from: str, batch: Batch) -> list[SendResult]:
        results: list[SendResult | None] = [None] * len(batch)
        count = len(self.lanes)
        run_in_turn(
            [
                lane.steps(envelope_from, batch, range(k, len(batch), count), results)
                for k, lane in enumerate(self.lanes)
            ]
        )
        return finished(results)


def run_in_turn(runs: list[Iterator[None]]) -> None:
    """Advance each run by one step in turn until all are done."""
    while runs:
        for run in list(runs):
            if next(run, StopIteration) is StopIteration:
                runs.remove(run)


def finished(results: Sequence[SendResult | None]) -> list[SendResult]:
    return [r if r is not None else SendResult(Outcome.temporary, "not sent") for r in results]


def _classify(code: int, text: str, stage: str) -> SendResult:
    reply = f"{code} {text}".strip()[:500]
    if code == 530:
        # "Authentication required" (RFC 4954) or "STARTTLS first" (RFC 3207), at whatever
        # stage the relay says it: about our session, never a reader's address.
        return SendResult(
            Outcome.permanent,
            f"the relay requires authentication (or TLS) first: {reply}"[:500],
            blocked=True,
        )
    if 500 <= code < 600:
        return SendResult(Outcome.permanent, reply, bounce=stage == "rcpt")
    return SendResult(Outcome.temporary, reply)


class StartTlsRefused(smtplib.SMTPResponseException):
    """The relay announced STARTTLS and then refused it (e.g. 454)."""


# Raised while connecting when the relay refuses our credentials or TLS (a configuration
# matter, not a reader's): SMTPNotSupportedError is AUTH asked of a server without it.
_REFUSED_US = (
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPNotSupportedError,
    ssl.SSLError,
    StartTlsRefused,
)


def _refusal(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"SMTP authentication refused: {_describe(exc)}"[:500]
    if isinstance(exc, StartTlsRefused):
        return f"TLS with the relay failed: it refused STARTTLS: {_describe(exc)}"[:500]
    if isinstance(exc, ssl.SSLError):
        return f"TLS with the relay failed: {_describe(exc)}"[:500]
    return f"the relay refused us: {_describe(exc)}"[:500]


def _raise_if_closing(code: int, text: str) -> None:
    if code == 421 or code == -1:  # 421: the server is closing; -1: smtplib lost the line
        raise _Dropped(f"{code} {text}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error or "")
        return (f"{exc.smtp_code} {text}" if exc.smtp_code else text)[:500]  # 0: no reply
    return (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:500]


def _close_quietly(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        smtp.close()

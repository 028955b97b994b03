"""Transports: SMTP (lock-step and pipelined) and the Maildir outbox."""

from __future__ import annotations

import asyncio
import mailbox
import socket
from email import message_from_bytes

import pytest

from newsletter.config import Settings
from newsletter.transport import (
    MaildirTransport,
    Outcome,
    SmtpLanes,
    SmtpOptions,
    SmtpTransport,
    make_transport,
)


def _message(n: int) -> bytes:
    # The second body line starts with a dot: dot-stuffed, as render_smtp prepares it.
    return (
        f"From: a@example.org\r\nTo: r{n}@example.org\r\nSubject: n{n}\r\n\r\n"
        f"line one\r\n..leading dot {n}\r\n"
    ).encode()


async def _announce_pipelining(server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
    # aiosmtpd handles pipelined commands in order but does not announce the extension.
    session.host_name = hostname
    return [*responses[:-1], "250-PIPELINING", responses[-1]]


@pytest.fixture(params=["lockstep", "pipelining"])
def smtp(request, smtp_server):  # type: ignore[no-untyped-def]
    url, handler = smtp_server
    if request.param == "pipelining":
        handler.handle_EHLO = _announce_pipelining  # hooks are looked up per connection
    return url, handler, request.param


def test_batch_over_one_connection(smtp) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a batch goes out with dots unstuffed; a 550 fails only its recipient."""
    url, handler, mode = smtp
    handler.fail_with["r2@example.org"] = "550 5.1.1 no such user"
    batch = [(f"r{n}@example.org", _message(n)) for n in range(5)]
    transport = SmtpTransport(url)
    with transport:
        results = transport.send("bounces@example.org", batch)
        assert transport._pipelining is (mode == "pipelining")
    assert [r.outcome for r in results] == [
        Outcome.ok,
        Outcome.ok,
        Outcome.permanent,
        Outcome.ok,
        Outcome.ok,
    ]
    assert results[2].bounce and results[2].reply.startswith("550")
    got = handler.by_recipient()
    assert sorted(got) == [f"r{n}@example.org" for n in (0, 1, 3, 4)]
    body = message_from_bytes(got["r3@example.org"][0]).get_payload()
    assert ".leading dot 3" in body and "..leading" not in body


def test_temporary_when_server_says_try_later(smtp) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a 421 for every recipient makes the whole batch temporary."""
    url, handler, _ = smtp
    handler.fail_all_with = "421 4.3.0 try later"
    with SmtpTransport(url) as transport:
        results = transport.send("b@example.org", [("x@example.org", _message(1))] * 3)
    assert {r.outcome for r in results} == {Outcome.temporary}
    assert handler.messages == []


def test_server_down_is_temporary() -> None:
    """Scenario: nobody listens on the port: every message is temporary, nothing raises."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    transport = SmtpTransport(f"smtp://127.0.0.1:{port}?timeout=2")
    results = transport.send("b@example.org", [("x@example.org", _message(1))] * 2)
    transport.close()
    assert [r.outcome for r in results] == [Outcome.temporary, Outcome.temporary]


def test_url_forms() -> None:
    """Scenario: the documented SMTP URL forms are read as the README says."""
    plain = SmtpOptions.from_url("smtp://mailer:p%40ss@mx.example.org:587?timeout=10")
    assert (plain.host, plain.port, plain.implicit_tls) == ("mx.example.org", 587, False)
    assert (plain.username, plain.password, plain.timeout) == ("mailer", "p@ss", 10.0)
    tls = SmtpOptions.from_url("smtps://mx.example.org?verify=0")
    assert (tls.port, tls.implicit_tls, tls.verify) == (465, True, False)


def test_maildir_outbox(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Scenario: with no SMTP URL, messages land in a Maildir created on first use."""
    settings = Settings(outbox=tmp_path / "deep" / "outbox", secret_key="k")
    transport = make_transport(settings)
    assert isinstance(transport, MaildirTransport) and not transport.dot_stuffed
    with transport:
        results = transport.send("b@example.org", [("r1@example.org", b"Subject: hi\r\n\r\nx\r\n")])
    assert results[0].outcome is Outcome.ok
    box = mailbox.Maildir(settings.outbox, create=False)
    [message] = list(box)
    assert message["Delivered-To"] == "r1@example.org" and message["Subject"] == "hi"


def test_reconnects_after_the_server_closes_mid_batch(smtp) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a 421 (server closing) mid-batch: that message is temporary, the client
    reconnects once and the rest of the batch goes out."""
    url, handler, _ = smtp
    handler.fail_with["r1@example.org"] = "421 4.4.2 closing connection"
    with SmtpTransport(url) as transport:
        results = transport.send(
            "b@example.org", [(f"r{n}@example.org", _message(n)) for n in range(4)]
        )
    assert [r.outcome for r in results] == [Outcome.ok, Outcome.temporary, Outcome.ok, Outcome.ok]
    assert sorted(handler.by_recipient()) == ["r0@example.org", "r2@example.org", "r3@example.org"]


def test_each_message_may_carry_its_own_envelope_sender(smtp) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a batch mixes messages with their own envelope sender (VERP) and messages
    without one; the server sees each message's MAIL FROM as given, the batch's otherwise."""
    url, handler, _ = smtp
    batch = [
        ("r0@example.org", _message(0), "inbound+tok0@example.org"),
        ("r1@example.org", _message(1)),
        ("r2@example.org", _message(2), None),
        ("r3@example.org", _message(3), "inbound+tok3@example.org"),
    ]
    with SmtpTransport(url) as transport:
        results = transport.send("bounces@example.org", batch)
    assert {r.outcome for r in results} == {Outcome.ok}
    senders = {rcpts[0]: sender for sender, rcpts, _ in handler.messages}
    assert senders == {
        "r0@example.org": "inbound+tok0@example.org",
        "r1@example.org": "bounces@example.org",
        "r2@example.org": "bounces@example.org",
        "r3@example.org": "inbound+tok3@example.org",
    }


def test_maildir_records_each_messages_envelope_sender(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the outbox's Return-Path is the message's own envelope sender when given."""
    transport = MaildirTransport(tmp_path / "outbox")
    data = b"Subject: hi\r\n\r\nx\r\n"
    with transport:
        transport.send("b@example.org", [("r1@example.org", data, "inbound+t@example.org")])
        transport.send("b@example.org", [("r2@example.org", data)])
    paths = {m["Delivered-To"]: m["Return-Path"] for m in mailbox.Maildir(tmp_path / "outbox")}
    assert paths == {
        "r1@example.org": "<inbound+t@example.org>",
        "r2@example.org": "<b@example.org>",
    }


class _Overlap:
    """Wraps the recording handler: each DATA takes 50 ms, and the most messages being taken
    in at once, and the connections they came over, are noted."""

    def __init__(self, handler) -> None:  # type: ignore[no-untyped-def]
        self.handler = handler
        self.busy = 0
        self.most = 0
        self.peers: set[tuple[str, int]] = set()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.busy += 1
        self.most = max(self.most, self.busy)
        self.peers.add(session.peer)
        await asyncio.sleep(0.05)
        self.busy -= 1
        return await self.handler.__class__.handle_DATA(self.handler, server, session, envelope)


def test_lanes_keep_a_message_in_flight_on_each_connection(smtp) -> None:  # type: ignore[no-untyped-def]
    """Scenario: NEWSLETTER_SMTP_CONNECTIONS=3: the relay takes in three messages at once,
    over three connections; each reader gets one copy, the 550 fails only its reader, and
    the results come back in the batch's order."""
    url, handler, _ = smtp
    overlap = _Overlap(handler)
    handler.handle_DATA = overlap.handle_DATA
    handler.fail_with["r4@example.org"] = "550 5.1.1 no such user"
    batch = [(f"r{n}@example.org", _message(n)) for n in range(9)]
    transport = make_transport(Settings(smtp_url=url, smtp_connections=3, secret_key="k"))
    assert isinstance(transport, SmtpLanes) and transport.dot_stuffed
    with transport:
        results = transport.send("b@example.org", batch)
    assert [r.outcome for r in results] == [Outcome.ok] * 4 + [Outcome.permanent] + [Outcome.ok] * 4
    assert results[4].bounce
    got = handler.by_recipient()
    assert sorted(got) == sorted(f"r{n}@example.org" for n in range(9) if n != 4)
    assert all(len(copies) == 1 for copies in got.values())
    assert len(overlap.peers) == 3 and overlap.most == 3


def test_lanes_reconnect_only_the_connection_the_relay_closed(smtp) -> None:  # type: ignore[no-untyped-def]
    """Scenario: over two connections, the relay answers 421 (closing) to one message: that
    message is temporary, its connection is opened again, and every other message goes out
    once."""
    url, handler, _ = smtp
    handler.fail_with["r2@example.org"] = "421 4.4.2 closing connection"
    batch = [(f"r{n}@example.org", _message(n)) for n in range(8)]
    with SmtpLanes(url, 2) as transport:
        results = transport.send("b@example.org", batch)
    assert [r.outcome for r in results] == [
        Outcome.temporary if n == 2 else Outcome.ok for n in range(8)
    ]
    got = handler.by_recipient()
    assert sorted(got) == sorted(f"r{n}@example.org" for n in range(8) if n != 2)
    assert all(len(copies) == 1 for copies in got.values())


def test_lanes_to_a_relay_that_is_down_are_temporary_and_blocked() -> None:
    """Scenario: nobody listens: every message over every connection is temporary and
    marked as the relay's fault (the send pauses after its retries; no reader fails)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with SmtpLanes(f"smtp://127.0.0.1:{port}?timeout=2", 3) as transport:
        results = transport.send(
            "b@example.org", [(f"r{n}@example.org", _message(n)) for n in range(5)]
        )
    assert all(r.outcome is Outcome.temporary and r.blocked for r in results)

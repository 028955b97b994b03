"""`newsletter inbound --listen`: the SMTP/LMTP server takes mail for the inbound address and
its +token forms only, never relays, and holds its size and connection limits."""

from __future__ import annotations

import smtplib
import socket
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.inbound.intake import Intake
from newsletter.inbound.server import InboundServer
from newsletter.models import InboundMessage, Subscriber, SubscriberStatus
from newsletter.runtime import Runtime

sys.path.append(str(Path(__file__).parent))
from server_kit import RunningServer

INBOUND = "inbound@news.example.org"


def stored(runtime: Runtime) -> int:
    with runtime.session() as session:
        return session.scalar(select(func.count()).select_from(InboundMessage)) or 0


def reader_status(runtime: Runtime, subscriber_id: int) -> SubscriberStatus:
    with runtime.session() as session:
        return session.get_one(Subscriber, subscriber_id).status


@pytest.fixture
def sent(session: Session, readers):  # type: ignore[no-untyped-def]
    """One reader with a sent delivery, committed (the server works in its own sessions)."""
    made = readers.one()
    session.commit()
    return made


def test_a_bounce_to_the_verp_address_is_accepted_and_applied(runtime: Runtime, sent) -> None:  # type: ignore[no-untyped-def]
    """Scenario: an MTA delivers a DSN to inbound+token@: 250, stored, the reader bounced."""
    with (
        RunningServer(InboundServer(Intake(runtime))) as port,
        smtplib.SMTP("127.0.0.1", port) as smtp,
    ):
        refused = smtp.sendmail("", [sent.return_path], sent.fill("postfix_hard.eml"))
    assert refused == {}
    assert stored(runtime) == 1
    assert reader_status(runtime, sent.subscriber_id) is SubscriberStatus.bounced


@pytest.mark.parametrize(
    "recipient",
    [
        "someone@example.com",  # a relay attempt
        "postmaster@news.example.org",
        "inbound@news.example.org.evil.com",
        "inbound+notatoken@news.example.org",
        "inbound+@news.example.org",
        "inbound@news.exаmple.org",  # Cyrillic "а": a look-alike domain
        "inbоund@news.example.org",  # Cyrillic "о"
        "x" * 300 + "@news.example.org",
    ],
)
def test_every_other_recipient_is_refused(runtime: Runtime, recipient: str) -> None:
    """Scenario: foreign, look-alike, token-less or forged recipients get a 5xx; nothing stored."""
    with (
        RunningServer(InboundServer(Intake(runtime))) as port,
        smtplib.SMTP("127.0.0.1", port) as smtp,
    ):
        smtp.ehlo()
        smtp.mail("")
        smtp.send(f"RCPT TO:<{recipient}>\r\n".encode())  # raw bytes: smtplib is ASCII-only
        code, _ = smtp.getreply()
        assert 500 <= code < 600
        code, _ = smtp.rcpt(INBOUND)
        assert code == 250
    assert stored(runtime) == 0


def test_a_forged_token_is_refused_but_any_case_of_a_real_one_is_taken(
    runtime: Runtime, sent
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: one changed letter of a token is refused; the same token upper-cased is ours."""
    local, domain = sent.return_path.split("@")
    changed = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
    with (
        RunningServer(InboundServer(Intake(runtime))) as port,
        smtplib.SMTP("127.0.0.1", port) as smtp,
    ):
        smtp.ehlo()
        smtp.mail("")
        assert smtp.rcpt(changed)[0] == 550
        assert smtp.rcpt(local.upper() + "@" + domain.upper())[0] == 250


def test_a_message_over_the_size_limit_is_refused(runtime: Runtime, sent) -> None:  # type: ignore[no-untyped-def]
    """Scenario: NEWSLETTER_INBOUND_MAX_BYTES=2048 refuses a larger message with 552."""
    small = Runtime(replace(runtime.settings, inbound_max_bytes=2048), _engine=runtime.engine)
    big = sent.fill("postfix_hard.eml") + b"x" * 4096
    with RunningServer(InboundServer(Intake(small))) as port:
        # smtplib declares SIZE: refused at MAIL.
        with (
            smtplib.SMTP("127.0.0.1", port) as smtp,
            pytest.raises(smtplib.SMTPSenderRefused) as at_mail,
        ):
            smtp.sendmail("", [INBOUND], big)
        with smtplib.SMTP("127.0.0.1", port) as smtp:  # says nothing: refused after DATA
            smtp.ehlo()
            smtp.mail("")
            smtp.rcpt(INBOUND)
            at_data = smtp.data(big)
    assert at_mail.value.smtp_code == 552 and at_data[0] == 552
    assert stored(runtime) == 0


def test_connections_past_the_limit_are_turned_away(runtime: Runtime) -> None:
    """Scenario: with room for one connection, a second client is told 421 and closed."""
    server = InboundServer(Intake(runtime), max_connections=1)
    with RunningServer(server) as port, smtplib.SMTP("127.0.0.1", port) as first:
        first.noop()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as second:
            assert second.recv(200).startswith(b"421 ")
        first.noop()  # the first is still served


def test_too_many_recipients_are_refused(runtime: Runtime) -> None:
    """Scenario: past ten recipients in one message, RCPT gets 452."""
    with (
        RunningServer(InboundServer(Intake(runtime))) as port,
        smtplib.SMTP("127.0.0.1", port) as smtp,
    ):
        smtp.ehlo()
        smtp.mail("")
        codes = [smtp.rcpt(INBOUND)[0] for _ in range(11)]
    assert codes == [250] * 10 + [452]


def test_lmtp_answers_once_per_recipient(runtime: Runtime, sent) -> None:  # type: ignore[no-untyped-def]
    """Scenario: LMTP with two of our recipients: two replies, two stored messages."""
    with RunningServer(InboundServer(Intake(runtime), lmtp=True)) as port:
        lmtp = smtplib.LMTP("127.0.0.1", port)
        try:
            refused = lmtp.sendmail("", [sent.return_path, INBOUND], sent.fill("autoreply.eml"))
        finally:
            lmtp.quit()
    assert refused == {}
    assert stored(runtime) == 2


def test_a_database_that_cannot_store_gets_a_temporary_refusal(
    settings: Settings, tmp_path: Path
) -> None:
    """Scenario: the database has no tables: 451, so the sending server keeps the message."""
    broken = Runtime(replace(settings, database_url=f"sqlite:///{tmp_path / 'empty.db'}"))
    with (
        RunningServer(InboundServer(Intake(broken))) as port,
        smtplib.SMTP("127.0.0.1", port) as smtp,
        pytest.raises(smtplib.SMTPDataError) as refused,
    ):
        smtp.sendmail("", [INBOUND], b"Subject: x\r\n\r\nhello\r\n")
    assert refused.value.smtp_code == 451
    broken.dispose()


def test_the_cli_refuses_bad_options_in_one_line(cli) -> None:  # type: ignore[no-untyped-def]
    """Scenario: no inbound address, a bad HOST:PORT, both modes: one line, non-zero exit."""
    result = cli("inbound", "--listen", "127.0.0.1:2525")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: set NEWSLETTER_INBOUND_ADDRESS (e.g. inbound@news.example.org) to receive mail"
    ]
    env = {"NEWSLETTER_INBOUND_ADDRESS": INBOUND}
    for args in (
        ("--listen", "nonsense"),
        ("--listen", "127.0.0.1:99999"),
        ("--listen", "127.0.0.1:25", "--imap", "imaps://u:p@h/INBOX"),
        ("--imap", "imaps://u:p@h/INBOX", "--lmtp"),
        (),
    ):
        result = cli("inbound", *args, env=env)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr
    result = cli("inbound", "--imap", "http://u:p@h/INBOX", env=env)
    assert result.returncode == 1 and "imaps://" in result.stderr
    bad_address = cli(
        "inbound", "--listen", "127.0.0.1:2525", env={"NEWSLETTER_INBOUND_ADDRESS": "a+b@x.org"}
    )
    assert bad_address.returncode == 1 and "no '+'" in bad_address.stderr

"""`newsletter inbound --imap`: returned mail read from a real IMAP mailbox (a private Dovecot
over implicit TLS), processed like the listener's, then deleted or moved."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from newsletter.inbound.imap import ImapSource, poll_once
from newsletter.inbound.intake import Intake
from newsletter.models import InboundMessage, Subscriber, SubscriberStatus
from newsletter.runtime import Runtime

sys.path.append(str(Path(__file__).parent))
from imap_kit import DOVECOT, Dovecot, clear

pytestmark = pytest.mark.skipif(
    not os.path.exists(DOVECOT), reason="needs Debian's dovecot-imapd (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Dovecot:
    clear(dovecot, "INBOX", "Processed")
    return dovecot


def statuses(runtime: Runtime, *ids: int) -> list[SubscriberStatus]:
    with runtime.session() as session:
        return [session.get_one(Subscriber, i).status for i in ids]


def test_the_cli_reads_the_mailbox_once_and_empties_it(
    cli, mailbox, session: Session, readers, runtime
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a bounce (to the VERP address, said by Delivered-To) and a complaint (to the
    bare address) wait in INBOX: one pass handles both and deletes them."""
    bounced, complained = (
        readers.one("gone@example.net"),
        readers.one("angry@example.net", "2020-W06"),
    )
    session.commit()
    mailbox.append(
        b"Delivered-To: "
        + bounced.return_path.encode()
        + b"\r\n"
        + bounced.fill("postfix_hard.eml")
    )
    mailbox.append(complained.fill("arf_abuse.eml", return_path="digest@news.example.org"))
    result = cli(
        "inbound",
        "--imap",
        mailbox.url(),
        env={"NEWSLETTER_INBOUND_ADDRESS": "inbound@news.example.org"},
    )
    assert result.returncode == 0, result.stderr
    assert "2 message(s) taken" in result.stdout
    assert statuses(runtime, bounced.subscriber_id, complained.subscriber_id) == [
        SubscriberStatus.bounced,
        SubscriberStatus.complained,
    ]
    assert mailbox.count("INBOX") == 0


def test_processed_mail_can_be_moved_instead_of_deleted(
    mailbox, session: Session, readers, runtime
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: ?processed=Processed moves what was handled; a second pass finds nothing."""
    sent = readers.one()
    session.commit()
    mailbox.append(sent.fill("autoreply.eml"))
    source = ImapSource.from_url(mailbox.url(query="verify=0&processed=Processed"))
    intake = Intake(runtime)
    assert poll_once(source, intake) == 1
    assert poll_once(source, intake) == 0
    assert (mailbox.count("INBOX"), mailbox.count("Processed")) == (0, 1)
    with runtime.session() as check:
        row = check.query(InboundMessage).one()
        assert (row.channel, row.subscriber_id) == ("imap", sent.subscriber_id)


def test_a_large_message_is_read_only_up_to_the_limit(mailbox, runtime) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a 300 KB message with a 64 KB limit: 64 KB stored, marked cut, full size kept."""
    small = Runtime(replace(runtime.settings, inbound_max_bytes=65536), _engine=runtime.engine)
    mailbox.append(b"Subject: big\r\n\r\n" + b"y" * 300_000 + b"\r\n")
    poll_once(ImapSource.from_url(mailbox.url()), Intake(small))
    with runtime.session() as check:
        row = check.query(InboundMessage).one()
        assert (len(row.raw), row.truncated, row.size > 300_000) == (65536, True, True)


def test_mail_stays_in_the_mailbox_when_it_cannot_be_stored(mailbox, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the database has no tables: the pass fails and the message is still there."""
    broken = Runtime(replace(settings, database_url=f"sqlite:///{tmp_path / 'empty.db'}"))
    mailbox.append(b"Subject: keep me\r\n\r\nhello\r\n")
    with pytest.raises(OperationalError):
        poll_once(ImapSource.from_url(mailbox.url()), Intake(broken))
    broken.dispose()
    assert mailbox.count("INBOX") == 1


def test_bad_mailbox_urls_and_credentials_are_one_line_errors(cli, mailbox) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a wrong password, an unknown folder, a self-signed certificate not accepted."""
    env = {"NEWSLETTER_INBOUND_ADDRESS": "inbound@news.example.org"}
    wrong = mailbox.url().replace("s3cret", "wrong")
    for url in (wrong, mailbox.url(folder="Nowhere"), mailbox.url(query="")):
        result = cli("inbound", "--imap", url, env=env)
        assert result.returncode == 1, url
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr

"""The sample week as subscribers get it, judged by ../shared/tools/mailcheck (issue 6).

tests/edition/test_mailcheck.py judges preview_message. This test sends the week through the
engine instead: start_send runs send_batch in-process, which substitutes into the variants'
dot-stuffed bytes (MessageTemplate.render_smtp) and pipelines them over one SmtpTransport
connection to aiosmtpd. The server undoes the dot-stuffing, so each .eml holds a message as
a receiving server stores it. Each must also equal, byte for byte but for its Date and MIME
boundary, what MessageTemplate.render gives that reader: the unstuffed form that the Maildir
outbox stores and a preview shows (a dot lost or doubled on the wire shows there; mailcheck
would not notice it).
"""

from __future__ import annotations

import re
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from dispatch_kit import WEEK, pg_only
from mailcheck_kit import Mailcheck
from sqlalchemy import Engine, select

from newsletter import dispatch
from newsletter.config import Settings
from newsletter.languages import parse_languages
from newsletter.messages import Recipient, prepare_edition_messages
from newsletter.models import Edition, EditionStatus, Subscriber, SubscriberStatus, utcnow
from newsletter.runtime import Runtime
from newsletter.tokens import TokenPurpose, TokenSigner

BASE_URL = "https://news.example.org"  # https: List-Unsubscribe-Post is sent
POSTAL_ADDRESS = "Example Media, PO Box 1, 00-001 Warsaw, Poland"
# address -> (name, languages): the layouts the edition test checks, one Cyrillic name.
READERS = {
    "alesia@example.org": ("Алеся Каваленка", "be"),
    "olga@example.org": (None, "ru,en"),
    "anna@example.org": ("Anna Smith", "en,be,ru"),
}
_DATE_AND_BOUNDARY = re.compile(rb"(?m)^Date: [^\r\n]*\r\n|=_nl[0-9a-f]{24}")


def _comparable(message: bytes) -> bytes:
    return _DATE_AND_BOUNDARY.sub(b"", message)


@pg_only
@pytest.mark.slow
def test_sent_messages_pass_mailcheck(
    mailcheck: Mailcheck,
    settings: Settings,
    engine: Engine,
    smtp_server,  # type: ignore[no-untyped-def]
    edition: Edition,
    tmp_path: Path,
) -> None:
    """Each reader gets one message, to them, with their own unsubscribe link; all pass."""
    url, handler = smtp_server
    runtime = Runtime(
        replace(settings, smtp_url=url, base_url=BASE_URL, postal_address=POSTAL_ADDRESS),
        _engine=engine,
    )
    with runtime.session() as session:
        session.add_all(
            Subscriber(
                email=email,
                name=name,
                languages=languages,
                status=SubscriberStatus.active,
                confirmed_at=utcnow(),
            )
            for email, (name, languages) in READERS.items()
        )
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=runtime.jobs)
    with runtime.session() as session:
        progress = dispatch.progress(session, WEEK)
        sent = session.scalars(select(Edition).where(Edition.week == WEEK)).one()
        edition_id = sent.id
        ids = dict(session.execute(select(Subscriber.email, Subscriber.id)).all())
        templates = prepare_edition_messages(
            session, runtime.settings, sent, [langs for _, langs in READERS.values()]
        )
    assert progress.status is EditionStatus.sent
    assert (progress.sent, progress.failed) == (len(READERS), 0)

    signer = TokenSigner(runtime.settings.secret_key)
    assert sorted(rcpt for _, rcpts, _ in handler.messages for rcpt in rcpts) == sorted(READERS)
    files, links = [], set()
    for _, (rcpt,), content in handler.messages:
        name, languages = READERS[rcpt]
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        (to,) = message["To"].addresses
        assert (to.addr_spec, to.display_name) == (rcpt, name or "")
        assert message["Content-Language"] == languages.replace(",", ", ")
        (link,) = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        token = link.removeprefix(f"{BASE_URL}/unsubscribe/")
        assert token != link and "/" not in token
        read = signer.read(token, TokenPurpose.unsubscribe)
        assert (read.subscriber_id, read.edition_id) == (ids[rcpt], edition_id)
        links.add(link)
        expected = templates[parse_languages(languages)].render(
            Recipient(rcpt, name, unsubscribe_url=link, message_id=message["Message-ID"])
        )
        assert _comparable(content) == _comparable(expected)
        for subtype in ("plain", "html"):
            body = message.get_body((subtype,))
            assert body is not None
            text = body.get_content()
            assert link in text, subtype
            assert name is None or name in text, subtype  # the greeting
        path = tmp_path / f"{languages.replace(',', '-')}.eml"
        path.write_bytes(content)
        files.append(path)
    assert len(links) == len(READERS)

    verdict = mailcheck.run(files, tmp_path / "shots")
    assert verdict.passed, verdict

"""Classifying what comes back: DSNs (RFC 3464 and the formats of Postfix, Exim, Microsoft,
Gmail), ARF complaints, auto-replies, and hostile input that must stay harmless."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from newsletter.bounces import MAX_PARTS, classify
from newsletter.models import InboundKind as K

FIXTURES = Path(__file__).parent / "fixtures"
VALUES = {
    "to": "inbound@news.example.org",
    "rcpt": "reader@example.net",
    "rcpt_local": "reader",
    "return_path": "inbound+token@news.example.org",
    "message_id": "<17.abcdef012345@news.example.org>",
}


def fixture(name: str) -> bytes:
    return ((FIXTURES / name).read_text() % VALUES).replace("\n", "\r\n").encode()


@pytest.mark.parametrize(
    ("name", "kind", "status"),
    [
        ("rfc3464_permanent.eml", K.hard_bounce, "5.0.0"),
        ("postfix_hard.eml", K.hard_bounce, "5.1.1"),
        ("postfix_soft.eml", K.soft_bounce, "4.4.1"),
        ("postfix_delayed.eml", K.delayed, "4.4.1"),
        ("microsoft_hard.eml", K.hard_bounce, "5.1.10"),
        ("gmail_hard.eml", K.hard_bounce, "5.1.1"),
        ("exim_hard.eml", K.hard_bounce, ""),
    ],
)
def test_bounces_are_read_with_their_recipient_and_status(name: str, kind: K, status: str) -> None:
    """Scenario: each MTA's bounce names the failed reader, the status and the original."""
    report = classify(fixture(name))
    assert report.kind is kind
    assert [(f.address, f.status) for f in report.failures] == [("reader@example.net", status)]
    assert report.message_ids == ["<17.abcdef012345@news.example.org>"]


def test_the_original_return_path_is_found_where_the_report_quotes_it() -> None:
    """Scenario: Postfix's text/rfc822-headers and Exim's quoted copy carry our VERP sender."""
    assert classify(fixture("postfix_hard.eml")).return_paths == [VALUES["return_path"]]
    assert classify(fixture("exim_hard.eml")).return_paths == [VALUES["return_path"]]


def test_an_arf_report_is_a_complaint_with_its_original_sender() -> None:
    """Scenario: an RFC 5965 abuse report names Original-Mail-From and the original."""
    report = classify(fixture("arf_abuse.eml"))
    assert report.kind is K.complaint
    assert "abuse" in report.reason
    assert report.return_paths == [VALUES["return_path"]]
    assert report.original_recipients == ["reader@example.net"]
    assert report.message_ids == [VALUES["message_id"]]


def test_an_auto_reply_is_recognised_and_ignored() -> None:
    """Scenario: a vacation notice (Auto-Submitted: auto-replied) is an auto-reply."""
    report = classify(fixture("autoreply.eml"))
    assert report.kind is K.auto_reply
    assert report.failures == []


@pytest.mark.parametrize(
    "headers",
    [
        "X-Autoreply: yes",
        "Precedence: auto_reply",
        "Subject: Automatic reply: Situation in Belarus",
        "Subject: =?utf-8?b?0JDQstGC0L7QvtGC0LLQtdGCOiDQvtGC0L/Rg9GB0Lo=?=",
    ],
)
def test_other_auto_reply_markers(headers: str) -> None:
    """Scenario: X-Autoreply, Precedence and the usual subjects (Russian too) mark auto-replies."""
    raw = f"From: a@example.net\r\nTo: inbound@news.example.org\r\n{headers}\r\n\r\naway\r\n"
    assert classify(raw.encode()).kind is K.auto_reply


def test_a_plain_letter_is_unknown() -> None:
    """Scenario: a reader writes to the inbound address: nothing to act on."""
    raw = b"From: a@example.net\r\nSubject: hello\r\n\r\nWhat a nice digest.\r\n"
    assert classify(raw).kind is K.unknown


def test_a_dsn_that_says_delivered_is_not_a_bounce() -> None:
    """Scenario: a success DSN (Action: delivered) moves nobody."""
    raw = fixture("postfix_hard.eml").replace(b"Action: failed", b"Action: delivered")
    assert classify(raw).kind is K.unknown


def test_mailbox_full_and_policy_blocks_are_soft_even_with_a_5xx() -> None:
    """Scenario: 5.2.2 (mailbox full) and 5.7.1 (blocked) say the address exists: soft."""
    for status in (b"5.2.2", b"5.7.1"):
        raw = fixture("postfix_hard.eml").replace(b"Status: 5.1.1", b"Status: " + status)
        assert classify(raw).kind is K.soft_bounce


# --------------------------------------------------------------------------- hostile input


def test_a_deeply_nested_mime_bomb_is_unknown_and_quick() -> None:
    """Scenario: 5,000 nested multiparts: classified unknown in well under a second."""
    depth = 5000
    head = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth)
    )
    raw = ("From: x@example.net\r\n" + head + "Content-Type: text/plain\r\n\r\nhi\r\n").encode()
    started = time.perf_counter()
    report = classify(raw)
    assert report.kind is K.unknown
    assert time.perf_counter() - started < 5


def test_a_report_with_thousands_of_parts_is_read_only_so_far() -> None:
    """Scenario: 20,000 delivery-status blocks: at most MAX_PARTS are looked at."""
    blocks = "".join(
        f"Final-Recipient: rfc822; r{i}@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        for i in range(20000)
    )
    raw = (
        "From: MAILER-DAEMON@example.net\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="x"\r\n\r\n'
        "--x\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; example.net\r\n\r\n{blocks}--x--\r\n"
    ).encode()
    report = classify(raw)
    assert report.kind is K.hard_bounce
    assert len(report.failures) <= MAX_PARTS
    assert len(report.detail()["recipients"]) <= 8  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage \x80\x81" * 1000,
        b"Content-Type: multipart/report; boundary=\r\n\r\n--\r\n--\r\n",
        b"Content-Type: message/delivery-status\r\n\r\nStatus: \xff\xfe\r\nAction: \xd0\r\n",
        b"Content-Type: message/rfc822\r\n\r\n" * 3000,
        "Subject: =?utf-8?q?=FF=FE?=\r\nAuto-Submitted: \u0430uto\r\n\r\n".encode(),
    ],
)
def test_malformed_input_never_raises(raw: bytes) -> None:
    """Scenario: empty, binary, broken MIME, bad encodings: a Report, never an exception."""
    report = classify(raw)
    assert report.kind in set(K)


def test_a_forged_message_id_is_only_a_candidate() -> None:
    """Scenario: classification reports what it saw; attribution (bounce_policy) judges it."""
    raw = fixture("postfix_hard.eml").replace(b"<17.abcdef012345@", b"<18.000000000000@")
    assert classify(raw).message_ids == ["<18.000000000000@news.example.org>"]

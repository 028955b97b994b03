"""The test SMTP server records messages and refuses on request."""

from __future__ import annotations

import smtplib

import pytest


def test_records_and_refuses(smtp_server) -> None:  # type: ignore[no-untyped-def]
    """Scenario: one accepted recipient is recorded; a 550 address is refused."""
    url, handler = smtp_server
    host, port = url.removeprefix("smtp://").split(":")
    handler.fail_with["bad@example.org"] = "550 5.1.1 no such user"
    with smtplib.SMTP(host, int(port)) as client:
        client.sendmail("a@example.org", ["ok@example.org"], b"Subject: hi\r\n\r\nbody\r\n")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("a@example.org", ["bad@example.org"], b"Subject: x\r\n\r\ny\r\n")
    assert list(handler.by_recipient()) == ["ok@example.org"]

"""The return path and the mailto: each message's envelope sender names its delivery, the
List-Unsubscribe mailto names its reader, and without NEWSLETTER_INBOUND_ADDRESS nothing
changes."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from newsletter.config import Settings
from newsletter.dispatch.confirmation import send_confirmation
from newsletter.errors import ConfigError
from newsletter.messages import list_unsubscribe_headers
from newsletter.returnpath import InboundAddress
from newsletter.runtime import Runtime
from newsletter.subscriptions import add_subscriber
from newsletter.tokens import (
    TokenPurpose,
    TokenSigner,
    make_address_token,
    read_address_token,
)
from newsletter.transport import SmtpTransport

SIGNER = TokenSigner("test-secret-key-not-for-production")


def test_an_address_token_is_short_case_insensitive_and_tamper_proof() -> None:
    """Scenario: 47 lower-case base32 characters (a 64-character local part holds it), read in
    any case; any changed character, another purpose or another key is refused."""
    token = make_address_token(SIGNER, TokenPurpose.return_path, 2**40, 70_000, salt=2**47)
    assert re.fullmatch(r"[a-z2-7]{47}", token)
    data = read_address_token(SIGNER, token.upper(), TokenPurpose.return_path)
    assert (data.subscriber_id, data.edition_id, data.salt) == (2**40, 70_000, 2**47)
    for i in range(len(token)):
        changed = token[:i] + ("a" if token[i] != "a" else "b") + token[i + 1 :]
        with pytest.raises(Exception, match="address"):
            read_address_token(SIGNER, changed, TokenPurpose.return_path)
    with pytest.raises(Exception, match="not meant"):
        read_address_token(SIGNER, token, TokenPurpose.mail_unsubscribe)
    with pytest.raises(Exception, match="altered"):
        read_address_token(TokenSigner("another key"), token, TokenPurpose.return_path)
    for junk in ("", "ä" * 47, token + "a", "1" * 47, token[:-1]):
        with pytest.raises(Exception, match="address token"):
            read_address_token(SIGNER, junk, TokenPurpose.return_path)


def test_the_inbound_address_reads_only_its_own_forms() -> None:
    """Scenario: bare and +token forms are ours in any case; other hosts, other local parts,
    look-alikes and tokens of another kind of address are not."""
    address = InboundAddress("inbound", "news.example.org")
    verp = address.return_path(SIGNER, 7, 3, salt=99)
    assert address.read(SIGNER, "INBOUND@News.Example.Org").token is None  # type: ignore[union-attr]
    assert address.read(SIGNER, verp.upper()).token.subscriber_id == 7  # type: ignore[union-attr]
    assert address.read(SIGNER, f"<{verp}>").purpose is TokenPurpose.return_path  # type: ignore[union-attr]
    for other in (
        "inbound@example.org",
        "inbound2@news.example.org",
        verp.replace("news.example.org", "news.example.org.evil"),
        "inbound@news.exаmple.org",
        "inbound+" + "a" * 47 + "@news.example.org",
        "",
    ):
        assert address.read(SIGNER, other) is None, other


def test_list_unsubscribe_carries_the_readers_mailto_after_the_https_link() -> None:
    """Scenario: RFC 2369 order, pre-folded, subject=unsubscribe; none without an address."""
    url = "https://news.example.org/unsubscribe/abc"
    mailto = InboundAddress("inbound", "news.example.org").unsubscribe_address(SIGNER, 7, 3, salt=9)
    header = list_unsubscribe_headers(url, mailto).decode()
    assert header.startswith(
        f"List-Unsubscribe: <{url}>,\r\n <mailto:{mailto}?subject=unsubscribe>\r\n"
    )
    assert "mailto" not in list_unsubscribe_headers(url, None).decode()


def test_the_confirmation_email_goes_out_from_its_own_return_path(  # type: ignore[no-untyped-def]
    settings: Settings, engine, smtp_server
) -> None:
    """Scenario: with an inbound address the confirmation's MAIL FROM is a VERP address that
    names the pending reader; without it, NEWSLETTER_FROM's address as before."""
    url, handler = smtp_server
    for inbound in ("inbound@news.example.org", None):
        runtime = Runtime(replace(settings, inbound_address=inbound), _engine=engine)
        with runtime.session() as session:
            reader_id = add_subscriber(
                session, settings.secret_key, f"new{bool(inbound)}@example.net", "be"
            ).id
        send_confirmation(runtime.sessions, runtime.settings, SmtpTransport(url), reader_id)
        sender = handler.messages[-1][0]
        if inbound:
            target = InboundAddress.of(runtime.settings).read(SIGNER, sender)  # type: ignore[union-attr]
            assert target.purpose is TokenPurpose.return_path  # type: ignore[union-attr]
            assert (target.token.subscriber_id, target.token.edition_id) == (reader_id, None)  # type: ignore[union-attr]
        else:
            assert sender == "digest@news.example.org"


@pytest.mark.parametrize(
    "value",
    [
        "inbound+x@news.example.org",
        "no-at-sign",
        "a@localhost",
        "ä@news.example.org",
        "a" * 17 + "@x.org",
        "a b@x.org",
    ],
)
def test_a_bad_inbound_address_is_refused_at_start(value: str) -> None:
    """Scenario: '+' in the local part, no domain, non-ASCII, too long: one clear error."""
    with pytest.raises(ConfigError, match="NEWSLETTER_INBOUND_ADDRESS"):
        Settings.from_env({"NEWSLETTER_INBOUND_ADDRESS": value, "NEWSLETTER_SECRET_KEY": "k"})

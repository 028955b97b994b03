"""Signed link tokens: short, bound to a purpose, tamper-proof, expiring only for confirm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsletter.errors import TokenExpired, TokenInvalid
from newsletter.tokens import CONFIRM_MAX_AGE, TokenData, TokenPurpose, TokenSigner

SIGNER = TokenSigner("test-secret-key-not-for-production")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_unsubscribe_token_round_trips_with_edition_and_is_short() -> None:
    """Scenario: an unsubscribe link names subscriber and edition in about 35 URL-safe chars."""
    token = SIGNER.make(TokenPurpose.unsubscribe, 1_234_567, 208, now=NOW)
    assert 30 <= len(token) <= 40
    assert all(c.isalnum() or c in "-_" for c in token)
    data = SIGNER.read(token, TokenPurpose.unsubscribe)
    assert data == TokenData(TokenPurpose.unsubscribe, 1_234_567, 208, NOW)


def test_confirm_token_round_trips_without_edition() -> None:
    """Scenario: a confirmation link names only the subscriber and when it was issued."""
    token = SIGNER.make("confirm", 42, now=NOW)
    data = SIGNER.read(token, "confirm", now=NOW + timedelta(days=1))
    assert (data.subscriber_id, data.edition_id, data.issued_at) == (42, None, NOW)


def test_every_changed_character_is_rejected() -> None:
    """Scenario: changing any one character of a link makes it invalid."""
    token = SIGNER.make(TokenPurpose.unsubscribe, 77, 3)
    for i, char in enumerate(token):
        for replacement in ("A", "z", "-"):
            if replacement != char:
                tampered = token[:i] + replacement + token[i + 1 :]
                with pytest.raises(TokenInvalid):
                    SIGNER.read(tampered, TokenPurpose.unsubscribe)


def test_foreign_purpose_and_foreign_key_are_invalid() -> None:
    """Scenario: a confirm link used to unsubscribe, or a link signed elsewhere, is refused."""
    confirm = SIGNER.make(TokenPurpose.confirm, 5)
    with pytest.raises(TokenInvalid, match="not meant to unsubscribe"):
        SIGNER.read(confirm, TokenPurpose.unsubscribe)
    other = TokenSigner("another-key").make(TokenPurpose.unsubscribe, 5)
    with pytest.raises(TokenInvalid):
        SIGNER.read(other, TokenPurpose.unsubscribe)


@pytest.mark.parametrize("bad", ["", "abc", "!!!!", "токен", "a" * 36, "a b c", "x" * 400])
def test_malformed_tokens_are_invalid(bad: str) -> None:
    """Scenario: garbage in the URL is a clear TokenInvalid, never a crash."""
    with pytest.raises(TokenInvalid):
        SIGNER.read(bad, TokenPurpose.unsubscribe)


def test_padding_or_trailing_characters_are_invalid() -> None:
    """Scenario: a token has exactly one spelling; extra characters do not pass."""
    token = SIGNER.make(TokenPurpose.unsubscribe, 1, 1)
    for variant in (token + "=", token + "A", token[:-1], token + "\n"):
        with pytest.raises(TokenInvalid):
            SIGNER.read(variant, TokenPurpose.unsubscribe)


def test_confirm_tokens_expire_after_seven_days() -> None:
    """Scenario: a confirmation link works for 7 days, then says it has expired."""
    token = SIGNER.make(TokenPurpose.confirm, 9, now=NOW)
    SIGNER.read(token, TokenPurpose.confirm, now=NOW + CONFIRM_MAX_AGE - timedelta(seconds=1))
    with pytest.raises(TokenExpired):
        SIGNER.read(token, TokenPurpose.confirm, now=NOW + CONFIRM_MAX_AGE + timedelta(seconds=1))
    assert not issubclass(TokenExpired, TokenInvalid)


def test_unsubscribe_tokens_never_expire_unless_asked() -> None:
    """Scenario: an unsubscribe link from a ten-year-old email still works."""
    token = SIGNER.make(TokenPurpose.unsubscribe, 9, 1, now=NOW)
    assert SIGNER.read(token, "unsubscribe", now=NOW + timedelta(days=3650)).subscriber_id == 9
    with pytest.raises(TokenExpired):
        SIGNER.read(token, "unsubscribe", max_age=timedelta(hours=1), now=NOW + timedelta(days=1))

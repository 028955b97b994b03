"""Signed link tokens: short, bound to a purpose, tamper-proof, expiring only for confirm."""

from __future__ import annotations

import base64
import hmac
import struct
from datetime import UTC, datetime, timedelta

import pytest

from newsletter.errors import TokenExpired, TokenInvalid
from newsletter.tokens import (
    ADDRESS_PURPOSES,
    CONFIRM_MAX_AGE,
    TokenData,
    TokenPurpose,
    TokenSigner,
    make_address_token,
    make_message_id_token,
    read_address_token,
    read_message_id_token,
)

SECRET = "test-secret-key-not-for-production"
SIGNER = TokenSigner(SECRET)
SALT = 0x5EED_0F_5A17
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_unsubscribe_token_round_trips_with_edition_and_is_short() -> None:
    """Scenario: an unsubscribe link names subscriber, edition and salt in 50 URL-safe chars."""
    token = SIGNER.make(TokenPurpose.unsubscribe, 1_234_567, 208, salt=SALT, now=NOW)
    assert len(token) == 50
    assert all(c.isalnum() or c in "-_" for c in token)
    data = SIGNER.read(token, TokenPurpose.unsubscribe)
    assert data == TokenData(TokenPurpose.unsubscribe, 1_234_567, 208, NOW, SALT)


def test_confirm_token_round_trips_without_edition() -> None:
    """Scenario: a confirmation link names only the subscriber and when it was issued."""
    token = SIGNER.make("confirm", 42, salt=SALT, now=NOW)
    data = SIGNER.read(token, "confirm", now=NOW + timedelta(days=1))
    assert (data.subscriber_id, data.edition_id, data.issued_at, data.salt) == (42, None, NOW, SALT)


def test_tokens_reveal_no_id_count_or_time() -> None:
    """Scenario: links of neighbouring ids, editions and seconds share nothing readable: no
    id, edition, issue time or salt appears in the decoded bytes, and every length is equal."""
    tokens = [
        SIGNER.make(
            TokenPurpose.unsubscribe, sid, edition, salt=salt, now=NOW + timedelta(seconds=s)
        )
        for sid, edition, salt, s in [
            (1, 1, 1, 0),
            (2, 1, 1, 0),
            (1, 2, 1, 0),
            (1, 1, 2, 0),
            (1, 1, 1, 1),
            (2**40, None, 2**47, 0),
        ]
    ]
    assert len(set(tokens)) == len(tokens)
    assert {len(t) for t in tokens} == {50}
    raws = [base64.urlsafe_b64decode(t + "==") for t in tokens]
    stamp = int(NOW.timestamp()).to_bytes(4, "big")
    for raw in raws:
        assert stamp not in raw and stamp[:3] not in raw
    # Apart from the purpose byte, neighbouring ids differ in about half their bits.
    first = int.from_bytes(raws[0][1:], "big")
    for raw in raws[1:]:
        assert 80 < bin(first ^ int.from_bytes(raw[1:], "big")).count("1") < 216


def test_version_1_tokens_are_still_read_without_a_salt() -> None:
    """Scenario: a link mailed before the upgrade (version 1) still reads, with no salt."""
    token = _make_v1(TokenPurpose.unsubscribe, 77, 3, NOW)
    data = SIGNER.read(token, TokenPurpose.unsubscribe)
    assert (data.subscriber_id, data.edition_id, data.issued_at, data.salt) == (77, 3, NOW, None)
    with pytest.raises(TokenInvalid):
        SIGNER.read(token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "unsubscribe")


def _make_v1(purpose: TokenPurpose, sid: int, edition: int | None, now: datetime) -> str:
    """The version-1 layout, as tokens.py made it before link salts (ids in clear)."""
    code = {TokenPurpose.confirm: 1, TokenPurpose.unsubscribe: 2}[purpose]
    sub = sid.to_bytes((sid.bit_length() + 7) // 8 or 1, "big")
    ed = b"" if edition is None else edition.to_bytes((edition.bit_length() + 7) // 8 or 1, "big")
    body = struct.pack(">BBI", 0x10 | code, (len(sub) << 4) | len(ed), int(now.timestamp()))
    body += sub + ed
    key = hmac.digest(SECRET.encode(), b"newsletter.tokens." + purpose.encode(), "sha256")
    mac = hmac.digest(key, body, "sha256")[:16]
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode()


def test_every_changed_character_is_rejected() -> None:
    """Scenario: changing any one character of a link makes it invalid."""
    token = SIGNER.make(TokenPurpose.unsubscribe, 77, 3, salt=SALT)
    for i, char in enumerate(token):
        for replacement in ("A", "z", "-"):
            if replacement != char:
                tampered = token[:i] + replacement + token[i + 1 :]
                with pytest.raises(TokenInvalid):
                    SIGNER.read(tampered, TokenPurpose.unsubscribe)


def test_foreign_purpose_and_foreign_key_are_invalid() -> None:
    """Scenario: a confirm link used to unsubscribe, or a link signed elsewhere, is refused."""
    confirm = SIGNER.make(TokenPurpose.confirm, 5, salt=SALT)
    with pytest.raises(TokenInvalid, match="not meant to unsubscribe"):
        SIGNER.read(confirm, TokenPurpose.unsubscribe)
    other = TokenSigner("another-key").make(TokenPurpose.unsubscribe, 5, salt=SALT)
    with pytest.raises(TokenInvalid):
        SIGNER.read(other, TokenPurpose.unsubscribe)


def test_a_message_id_token_is_fixed_by_its_issue_day_and_of_its_own_purpose() -> None:
    """Scenario: the same reader, edition, salt and issue day give the same Message-ID token
    at any hour, read in any case; it differs from the return path's token of the same
    reader, neither passes as the other, nor as a link token; a changed character fails."""
    made = [
        make_message_id_token(SIGNER, 5, 3, salt=SALT, issued=NOW + timedelta(hours=h))
        for h in (0, 14)
    ]
    assert made[0] == made[1] and len(made[0]) == 58
    data = read_message_id_token(SIGNER, made[0].upper())
    assert (data.purpose, data.subscriber_id, data.edition_id, data.salt) == (
        TokenPurpose.message_id,
        5,
        3,
        SALT,
    )
    assert data.issued_at.date() == NOW.date()
    verp = make_address_token(SIGNER, TokenPurpose.return_path, 5, 3, salt=SALT, now=NOW)
    with pytest.raises(TokenInvalid, match="not meant"):
        read_message_id_token(SIGNER, bytes(base64.b32decode(verp.upper() + "=")).hex())
    for purpose in ADDRESS_PURPOSES:
        with pytest.raises(TokenInvalid):
            read_address_token(SIGNER, made[0], purpose)
    for purpose in TokenPurpose:
        with pytest.raises(TokenInvalid):
            SIGNER.read(made[0], purpose)
    for i, char in enumerate(made[0]):
        changed = made[0][:i] + ("1" if char == "0" else "0") + made[0][i + 1 :]
        with pytest.raises(TokenInvalid):
            read_message_id_token(SIGNER, changed)
    for junk in ("", made[0][:-2], made[0] + "00", " " + made[0][1:], "g" * 58):
        with pytest.raises(TokenInvalid, match="malformed"):
            read_message_id_token(SIGNER, junk)


@pytest.mark.parametrize("bad", ["", "abc", "!!!!", "токен", "a" * 36, "a b c", "x" * 400])
def test_malformed_tokens_are_invalid(bad: str) -> None:
    """Scenario: garbage in the URL is a clear TokenInvalid, never a crash."""
    with pytest.raises(TokenInvalid):
        SIGNER.read(bad, TokenPurpose.unsubscribe)


def test_padding_or_trailing_characters_are_invalid() -> None:
    """Scenario: a token has exactly one spelling; extra characters do not pass."""
    token = SIGNER.make(TokenPurpose.unsubscribe, 1, 1, salt=SALT)
    for variant in (token + "=", token + "A", token[:-1], token + "\n"):
        with pytest.raises(TokenInvalid):
            SIGNER.read(variant, TokenPurpose.unsubscribe)


def test_confirm_tokens_expire_after_seven_days() -> None:
    """Scenario: a confirmation link works for 7 days, then says it has expired."""
    token = SIGNER.make(TokenPurpose.confirm, 9, now=NOW, salt=SALT)
    SIGNER.read(token, TokenPurpose.confirm, now=NOW + CONFIRM_MAX_AGE - timedelta(seconds=1))
    with pytest.raises(TokenExpired):
        SIGNER.read(token, TokenPurpose.confirm, now=NOW + CONFIRM_MAX_AGE + timedelta(seconds=1))
    assert not issubclass(TokenExpired, TokenInvalid)


def test_unsubscribe_tokens_never_expire_unless_asked() -> None:
    """Scenario: an unsubscribe link from a ten-year-old email still works."""
    token = SIGNER.make(TokenPurpose.unsubscribe, 9, 1, now=NOW, salt=SALT)
    assert SIGNER.read(token, "unsubscribe", now=NOW + timedelta(days=3650)).subscriber_id == 9
    with pytest.raises(TokenExpired):
        SIGNER.read(token, "unsubscribe", max_age=timedelta(hours=1), now=NOW + timedelta(days=1))

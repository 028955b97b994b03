"""Short signed link tokens for confirm and unsubscribe links (HMAC-SHA256, truncated).

Layout before base64url (no padding), about 36 characters for real ids:

    byte 0      version (high nibble) | purpose code (low nibble)
    byte 1      length of the subscriber id (high nibble) | length of the edition id (low; 0 = none)
    bytes 2-5   issued at, Unix seconds, big-endian
    ...         subscriber id, edition id (big-endian, minimal length)
    last 16     HMAC-SHA256(key for the purpose, everything before), first 128 bits

Each purpose has its own key derived from the secret key, so a token made for one purpose can
never pass as another, even if the purpose byte were forged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from newsletter.errors import TokenExpired, TokenInvalid

CONFIRM_MAX_AGE = timedelta(days=7)

_VERSION = 1
_MAC_SIZE = 16  # 128 bits: forging needs ~2^127 online guesses
_HEADER = struct.Struct(">BBI")
_HEADER_SIZE = _HEADER.size


class TokenPurpose(StrEnum):
    confirm = "confirm"
    unsubscribe = "unsubscribe"


_CODES: dict[str, int] = {TokenPurpose.confirm: 1, TokenPurpose.unsubscribe: 2}
_PURPOSES: dict[int, TokenPurpose] = {code: TokenPurpose(p) for p, code in _CODES.items()}
# Unsubscribe links must keep working for as long as the email sits in a mailbox.
_DEFAULT_MAX_AGE: dict[TokenPurpose, timedelta | None] = {
    TokenPurpose.confirm: CONFIRM_MAX_AGE,
    TokenPurpose.unsubscribe: None,
}


@dataclass(frozen=True)
class TokenData:
    purpose: TokenPurpose
    subscriber_id: int
    edition_id: int | None
    issued_at: datetime


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


class TokenSigner:
    """Makes and reads tokens; build it once per process (keys are derived here)."""

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("a secret key is required to sign tokens")
        master = secret_key.encode()
        # HMAC (RFC 2104) with its keyed inner and outer states computed once: make() then
        # costs two hash copies instead of an OpenSSL HMAC set-up (4 µs here) per recipient.
        self._states: dict[str, tuple[Any, Any]] = {}
        for purpose in TokenPurpose:
            key = hmac.digest(master, b"newsletter.tokens." + purpose.encode(), "sha256")
            block = key.ljust(64, b"\0")
            self._states[purpose] = (
                hashlib.sha256(bytes(b ^ 0x36 for b in block)),
                hashlib.sha256(bytes(b ^ 0x5C for b in block)),
            )

    def _mac(self, purpose: str, body: bytes) -> bytes:
        inner_state, outer_state = self._states[purpose]
        inner = inner_state.copy()
        inner.update(body)
        outer = outer_state.copy()
        outer.update(inner.digest())
        return outer.digest()[:_MAC_SIZE]

    def make(
        self,
        purpose: TokenPurpose | str,
        subscriber_id: int,
        edition_id: int | None = None,
        *,
        now: datetime | None = None,
    ) -> str:
        """A URL-safe token for this subscriber (and edition), issued now."""
        code = _CODES.get(purpose)
        if code is None:
            raise ValueError(f"unknown token purpose {purpose!r}")
        if not 0 <= subscriber_id < 2**64 or not (edition_id is None or 0 <= edition_id < 2**64):
            raise ValueError("ids must be between 0 and 2**64")
        issued = int(time.time() if now is None else now.timestamp())
        sub = _int_bytes(subscriber_id)
        ed = b"" if edition_id is None else _int_bytes(edition_id)
        body = _HEADER.pack((_VERSION << 4) | code, (len(sub) << 4) | len(ed), issued) + sub + ed
        return (
            base64.urlsafe_b64encode(body + self._mac(purpose, body)).rstrip(b"=").decode("ascii")
        )

    def read(
        self,
        token: str,
        purpose: TokenPurpose | str,
        *,
        max_age: timedelta | None = None,
        now: datetime | None = None,
    ) -> TokenData:
        """Check and decode a token; max_age None means the purpose's own lifetime.

        Raises TokenInvalid (tampered, malformed, other purpose) or TokenExpired.
        """
        purpose = TokenPurpose(purpose)
        raw = _decode(token)
        if len(raw) < _HEADER_SIZE + 1 + _MAC_SIZE:
            raise TokenInvalid("the link is incomplete")
        body, mac = raw[:-_MAC_SIZE], raw[-_MAC_SIZE:]
        version, code = raw[0] >> 4, raw[0] & 0x0F
        sub_len, ed_len = raw[1] >> 4, raw[1] & 0x0F
        if version != _VERSION or code not in _PURPOSES:
            raise TokenInvalid("the link is not one of ours")
        if _PURPOSES[code] != purpose:
            raise TokenInvalid(f"the link is not meant to {purpose}")
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            raise TokenInvalid("the link has been altered")
        if sub_len == 0 or len(body) != _HEADER_SIZE + sub_len + ed_len:
            raise TokenInvalid("the link is malformed")
        issued_at = datetime.fromtimestamp(int.from_bytes(body[2:6], "big"), UTC)
        subscriber_id = int.from_bytes(body[6 : 6 + sub_len], "big")
        edition_id = int.from_bytes(body[6 + sub_len :], "big") if ed_len else None
        limit = max_age if max_age is not None else _DEFAULT_MAX_AGE[purpose]
        if limit is not None and (now or datetime.now(UTC)) - issued_at > limit:
            raise TokenExpired("the link has expired")
        return TokenData(purpose, subscriber_id, edition_id, issued_at)


def _decode(token: str) -> bytes:
    """Strict base64url: one spelling per token, so a changed character never passes."""
    try:
        text = token.encode("ascii")
        raw = binascii.a2b_base64(
            text.replace(b"-", b"+").replace(b"_", b"/") + b"=" * (-len(text) % 4),
            strict_mode=True,
        )
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise TokenInvalid("the link is malformed") from exc
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != text:
        raise TokenInvalid("the link is malformed")
    return raw


def keyed_hash(secret_key: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 hex of a value under a key derived for one purpose (IPs, erased addresses)."""
    key = hashlib.sha256(b"newsletter.hash." + purpose.encode() + b"\0" + secret_key.encode())
    return hmac.new(key.digest(), value.encode(), "sha256").hexdigest()

"""Link tokens for confirm and unsubscribe links: encrypted and authenticated, 50 characters.

A token names a subscriber, the edition it came with, when it was issued and the
subscriber's link salt (a random value that changes when they subscribe afresh). Nobody
without the secret key can read any of it (ids are sequential: in clear they would count the
list and date the mail) or change any of it. Layout before base64url (no padding):

    byte 0       version (high nibble) | purpose code (low nibble), in clear
    bytes 1-16   tag: keyed BLAKE2b-128 (the purpose's MAC key) of byte 0 + the plaintext
    bytes 17-36  the plaintext XOR keyed BLAKE2b-160 (the purpose's cipher key) of the tag:
                   subscriber id    6 bytes, big-endian
                   edition id + 1   4 bytes (0: no edition)
                   issued at        4 bytes, Unix seconds
                   link salt        6 bytes, the subscriber's at the time

The tag is also the cipher's IV (the SIV construction, RFC 5297, with keyed BLAKE2b as the
PRF): a changed bit anywhere fails the tag, and equal inputs give equal tokens. Each purpose
has its own keys, so a token made for one purpose never passes as another.

Version 1 (ids and issue time in clear, no salt, HMAC-SHA256) is still read, so that links in
mail sent before the upgrade keep working; see subscriptions.token_holder for how far.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from newsletter.errors import TokenExpired, TokenInvalid

CONFIRM_MAX_AGE = timedelta(days=7)
SALT_BITS = 48  # a link salt fits the token's 6 bytes
# Subscriber ids start at 1: a test email's links name this id, which no reader ever has.
TEST_SUBSCRIBER_ID = 0

_VERSION = 2
_TAG_SIZE = 16  # 128 bits: forging needs ~2^127 online guesses
_PLAIN = struct.Struct(">6sI I6s")
_PLAIN_SIZE = _PLAIN.size  # 20
_MIDDLE = struct.Struct(">II")  # the plaintext between the ids: edition id + 1, issued at
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_TOKEN_SIZE = 1 + _TAG_SIZE + _PLAIN_SIZE
_MAX_ID = 2**48
_MAX_SALT = 2**SALT_BITS

_V1_VERSION = 1
_V1_MAC_SIZE = 16
_V1_HEADER = struct.Struct(">BBI")


class TokenPurpose(StrEnum):
    confirm = "confirm"
    unsubscribe = "unsubscribe"
    return_path = "return-path"  # VERP: the envelope sender of one delivery
    mail_unsubscribe = "mail-unsubscribe"  # the List-Unsubscribe mailto address
    message_id = "message-id"  # the Message-ID of one edition email (message_ids.py)


_CODES: dict[str, int] = {
    TokenPurpose.confirm: 1,
    TokenPurpose.unsubscribe: 2,
    TokenPurpose.return_path: 3,
    TokenPurpose.mail_unsubscribe: 4,
    TokenPurpose.message_id: 5,
}
_PURPOSES: dict[int, TokenPurpose] = {code: TokenPurpose(p) for p, code in _CODES.items()}
# Unsubscribe links must keep working for as long as the email sits in a mailbox.
_DEFAULT_MAX_AGE: dict[TokenPurpose, timedelta | None] = {
    TokenPurpose.confirm: CONFIRM_MAX_AGE,
    TokenPurpose.unsubscribe: None,
    TokenPurpose.return_path: None,  # bounces and complaints arrive days or months later
    TokenPurpose.mail_unsubscribe: None,
    TokenPurpose.message_id: None,
}


@dataclass(frozen=True)
class TokenData:
    purpose: TokenPurpose
    subscriber_id: int
    edition_id: int | None
    issued_at: datetime
    salt: int | None  # None: a version-1 token, made before link salts existed


class TokenSigner:
    """Makes and reads tokens; build it once per process (keys are derived here)."""

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("a secret key is required to sign tokens")
        master = secret_key.encode()
        # Keyed BLAKE2b states made once and copied per token: a send makes one token per
        # recipient, and keying a fresh hash costs several times its use.
        self._mac: dict[str, Any] = {}
        self._cipher: dict[str, Any] = {}
        self._v1: dict[str, tuple[Any, Any]] = {}
        for purpose in TokenPurpose:
            self._mac[purpose] = hashlib.blake2b(
                key=_derive(master, b"mac." + purpose.encode()), digest_size=_TAG_SIZE
            )
            self._cipher[purpose] = hashlib.blake2b(
                key=_derive(master, b"cipher." + purpose.encode()), digest_size=_PLAIN_SIZE
            )
            key = hmac.digest(master, b"newsletter.tokens." + purpose.encode(), "sha256")
            block = key.ljust(64, b"\0")
            self._v1[purpose] = (
                hashlib.sha256(bytes(b ^ 0x36 for b in block)),
                hashlib.sha256(bytes(b ^ 0x5C for b in block)),
            )

    def _tag(self, purpose: str, data: bytes) -> bytes:
        state = self._mac[purpose].copy()
        state.update(data)
        return state.digest()  # type: ignore[no-any-return]

    def _stream(self, purpose: str, tag: bytes) -> int:
        state = self._cipher[purpose].copy()
        state.update(tag)
        return int.from_bytes(state.digest(), "big")

    def make(
        self,
        purpose: TokenPurpose | str,
        subscriber_id: int,
        edition_id: int | None = None,
        *,
        salt: int,
        now: datetime | None = None,
    ) -> str:
        """A URL-safe token for this subscriber (with their link salt) and edition, issued now."""
        return self.maker(purpose, edition_id, now=now)(subscriber_id, salt)

    def maker(
        self,
        purpose: TokenPurpose | str,
        edition_id: int | None = None,
        *,
        now: datetime | None = None,
    ) -> Callable[[int, int], str]:
        """make() for many readers of one edition at one moment: (subscriber id, salt) -> token.
        What all of them share is packed and keyed once (a send makes one per message)."""
        code = _CODES.get(purpose)
        if code is None:
            raise ValueError(f"unknown token purpose {purpose!r}")
        _check_edition(edition_id)
        issued = int(time.time() if now is None else now.timestamp())
        head = bytes(((_VERSION << 4) | code,))
        middle = _MIDDLE.pack(0 if edition_id is None else edition_id + 1, issued)
        mac, cipher = self._mac[purpose], self._cipher[purpose]

        def make(subscriber_id: int, salt: int) -> str:
            _check_reader(subscriber_id, salt)
            plain = subscriber_id.to_bytes(6, "big") + middle + salt.to_bytes(6, "big")
            state = mac.copy()
            state.update(head + plain)
            tag = state.digest()
            state = cipher.copy()
            state.update(tag)
            sealed = int.from_bytes(plain, "big") ^ int.from_bytes(state.digest(), "big")
            raw = head + tag + sealed.to_bytes(_PLAIN_SIZE, "big")
            return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=").decode()

        return make

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
        if not raw:
            raise TokenInvalid("the link is incomplete")
        version, code = raw[0] >> 4, raw[0] & 0x0F
        if version not in (_VERSION, _V1_VERSION) or code not in _PURPOSES:
            raise TokenInvalid("the link is not one of ours")
        if _PURPOSES[code] != purpose:
            raise TokenInvalid(f"the link is not meant to {purpose}")
        data = self._read_v1(raw, purpose) if version == _V1_VERSION else self._open(raw, purpose)
        limit = max_age if max_age is not None else _DEFAULT_MAX_AGE[purpose]
        if limit is not None and (now or datetime.now(UTC)) - data.issued_at > limit:
            raise TokenExpired("the link has expired")
        return data

    def _open(self, raw: bytes, purpose: TokenPurpose) -> TokenData:
        if len(raw) != _TOKEN_SIZE:
            raise TokenInvalid("the link is incomplete")
        tag, sealed = raw[1 : 1 + _TAG_SIZE], raw[1 + _TAG_SIZE :]
        plain = (int.from_bytes(sealed, "big") ^ self._stream(purpose, tag)).to_bytes(
            _PLAIN_SIZE, "big"
        )
        if not hmac.compare_digest(tag, self._tag(purpose, raw[:1] + plain)):
            raise TokenInvalid("the link has been altered")
        sub, edition, issued, salt = _PLAIN.unpack(plain)
        return TokenData(
            purpose,
            int.from_bytes(sub, "big"),
            edition - 1 if edition else None,
            datetime.fromtimestamp(issued, UTC),
            int.from_bytes(salt, "big"),
        )

    def _read_v1(self, raw: bytes, purpose: TokenPurpose) -> TokenData:
        """Version 1: header, ids in clear, HMAC-SHA256 truncated to 128 bits."""
        if len(raw) < _V1_HEADER.size + 1 + _V1_MAC_SIZE:
            raise TokenInvalid("the link is incomplete")
        body, mac = raw[:-_V1_MAC_SIZE], raw[-_V1_MAC_SIZE:]
        inner_state, outer_state = self._v1[purpose]
        inner = inner_state.copy()
        inner.update(body)
        outer = outer_state.copy()
        outer.update(inner.digest())
        if not hmac.compare_digest(mac, outer.digest()[:_V1_MAC_SIZE]):
            raise TokenInvalid("the link has been altered")
        sub_len, ed_len = raw[1] >> 4, raw[1] & 0x0F
        if sub_len == 0 or len(body) != _V1_HEADER.size + sub_len + ed_len:
            raise TokenInvalid("the link is malformed")
        issued_at = datetime.fromtimestamp(int.from_bytes(body[2:6], "big"), UTC)
        subscriber_id = int.from_bytes(body[6 : 6 + sub_len], "big")
        edition_id = int.from_bytes(body[6 + sub_len :], "big") if ed_len else None
        return TokenData(purpose, subscriber_id, edition_id, issued_at, None)


def _derive(master: bytes, label: bytes) -> bytes:
    return hmac.digest(master, b"newsletter.tokens.v2." + label, "sha256")


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


# --- address and Message-ID tokens ----------------------------------------------------
# For the local part of an address ("inbound+<token>@host"), which RFC 5321 caps at 64
# characters and mail servers may change the case of, and for the left part of a Message-ID:
# the link token's construction (the purpose's keys, SIV, the link salt) in a compact layout.
# It never expires: bounces and complaints come days or months later. Equal inputs (the
# issued day included) give equal tokens.
#
#     byte 0       version 3 (high nibble) | purpose code (low nibble), in clear
#     bytes 1-10   tag: keyed BLAKE2b-128 of byte 0 + the plaintext, first 80 bits
#     bytes 11-28  the plaintext XOR the tag's key stream: subscriber id 6 bytes, edition id
#                  + 1 4 bytes, issued day 2 bytes (days since 2020-01-01), link salt 6 bytes
#
# An address spells it in lower-case base32, 47 characters. A Message-ID has no 64-character
# cap and is made once per message of a send: lower-case hex, 58 characters, spelled in C
# (base32, in Python, costs 2.8 µs of an address token's 5.4).
ADDRESS_PURPOSES = (TokenPurpose.return_path, TokenPurpose.mail_unsubscribe)
_ADDRESS_VERSION = 3
_ADDRESS_TAG = 10  # 80 bits: a forged address needs ~2^79 guesses, each one a mail sent
_ADDRESS_PLAIN = struct.Struct(">6sIH6s")
_ADDRESS_MIDDLE = struct.Struct(">IH")  # edition id + 1, issued day
_ADDRESS_SIZE = 1 + _ADDRESS_TAG + _ADDRESS_PLAIN.size  # 29 bytes: 47 base32 characters
_DAY_ZERO = datetime(2020, 1, 1, tzinfo=UTC)


def make_address_token(
    signer: TokenSigner,
    purpose: TokenPurpose,
    subscriber_id: int,
    edition_id: int | None = None,
    *,
    salt: int,
    now: datetime | None = None,
) -> str:
    """A case-insensitive token for an address's local part (return path or mailto)."""
    if purpose not in ADDRESS_PURPOSES:
        raise ValueError(f"{purpose!r} is not an address token purpose")
    raw = _compact_maker(signer, purpose, edition_id, now)(subscriber_id, salt)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def read_address_token(signer: TokenSigner, text: str, purpose: TokenPurpose) -> TokenData:
    """Check an address token in any letter case; TokenInvalid when it is not ours."""
    if purpose not in ADDRESS_PURPOSES:
        raise ValueError(f"{purpose!r} is not an address token purpose")
    if not text.isascii() or not text.isalnum() or len(text) > 64:
        raise TokenInvalid("the address token is malformed")
    upper = text.upper()
    try:
        raw = base64.b32decode(upper + "=" * (-len(upper) % 8))
    except (binascii.Error, ValueError) as exc:
        raise TokenInvalid("the address token is malformed") from exc
    # One spelling per token (up to letter case), as for link tokens.
    if len(raw) != _ADDRESS_SIZE or base64.b32encode(raw).decode("ascii").rstrip("=") != upper:
        raise TokenInvalid("the address token is malformed")
    return _open_compact(signer, raw, purpose, "address token")


def make_message_id_token(
    signer: TokenSigner,
    subscriber_id: int,
    edition_id: int,
    *,
    salt: int,
    issued: datetime,
) -> str:
    """The left part of a Message-ID naming one reader's copy of an edition; `issued` fixes
    it (the same on every send of that copy)."""
    return message_id_token_maker(signer, edition_id, issued)(subscriber_id, salt)


def message_id_token_maker(
    signer: TokenSigner, edition_id: int, issued: datetime
) -> Callable[[int, int], str]:
    """make_message_id_token for every reader of one edition: (subscriber id, salt) -> token."""
    seal = _compact_maker(signer, TokenPurpose.message_id, edition_id, issued)
    return lambda subscriber_id, salt: seal(subscriber_id, salt).hex()


def read_message_id_token(signer: TokenSigner, text: str) -> TokenData:
    """Check a Message-ID token in any letter case; TokenInvalid when it is not ours."""
    # isalnum first: bytes.fromhex would skip spaces, and one spelling per token it is.
    if len(text) != 2 * _ADDRESS_SIZE or not text.isascii() or not text.isalnum():
        raise TokenInvalid("the Message-ID token is malformed")
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise TokenInvalid("the Message-ID token is malformed") from exc
    return _open_compact(signer, raw, TokenPurpose.message_id, "Message-ID token")


def _compact_maker(
    signer: TokenSigner, purpose: TokenPurpose, edition_id: int | None, now: datetime | None
) -> Callable[[int, int], bytes]:
    """(subscriber id, salt) -> the compact token's bytes, for one edition and issue day."""
    _check_edition(edition_id)
    day = min(max(((now or datetime.now(UTC)) - _DAY_ZERO).days, 0), 2**16 - 1)
    head = bytes(((_ADDRESS_VERSION << 4) | _CODES[purpose],))
    middle = _ADDRESS_MIDDLE.pack(0 if edition_id is None else edition_id + 1, day)
    mac, cipher = signer._mac[purpose], signer._cipher[purpose]
    shift = 8 * (_PLAIN_SIZE - _ADDRESS_PLAIN.size)  # the key stream's first 18 bytes

    def seal(subscriber_id: int, salt: int) -> bytes:
        _check_reader(subscriber_id, salt)
        plain = subscriber_id.to_bytes(6, "big") + middle + salt.to_bytes(6, "big")
        state = mac.copy()
        state.update(head + plain)
        tag = state.digest()[:_ADDRESS_TAG]
        state = cipher.copy()
        state.update(tag)
        stream = int.from_bytes(state.digest(), "big") >> shift
        return head + tag + _xor(plain, stream)

    return seal


def _check_reader(subscriber_id: int, salt: int) -> None:
    if not (0 <= subscriber_id < _MAX_ID and 0 <= salt < _MAX_SALT):
        raise ValueError("subscriber id and salt must be between 0 and 2**48")


def _check_edition(edition_id: int | None) -> None:
    if edition_id is not None and not 0 <= edition_id < 2**32 - 1:
        raise ValueError("the edition id must be between 0 and 2**32 - 1")


def _open_compact(signer: TokenSigner, raw: bytes, purpose: TokenPurpose, what: str) -> TokenData:
    if len(raw) != _ADDRESS_SIZE:
        raise TokenInvalid(f"the {what} is malformed")
    if raw[0] != (_ADDRESS_VERSION << 4) | _CODES[purpose]:
        raise TokenInvalid(f"the {what} is not meant to {purpose}")
    tag, sealed = raw[1 : 1 + _ADDRESS_TAG], raw[1 + _ADDRESS_TAG :]
    plain = _xor(sealed, _address_stream(signer, purpose, tag))
    if not hmac.compare_digest(tag, signer._tag(purpose, raw[:1] + plain)[:_ADDRESS_TAG]):
        raise TokenInvalid(f"the {what} has been altered")
    sub, edition, day, salt = _ADDRESS_PLAIN.unpack(plain)
    return TokenData(
        purpose,
        int.from_bytes(sub, "big"),
        edition - 1 if edition else None,
        _DAY_ZERO + timedelta(days=day),
        int.from_bytes(salt, "big"),
    )


def _address_stream(signer: TokenSigner, purpose: TokenPurpose, tag: bytes) -> int:
    """The first 18 bytes of the tag's key stream, as an integer."""
    return signer._stream(purpose, tag) >> (8 * (_PLAIN_SIZE - _ADDRESS_PLAIN.size))


def _xor(data: bytes, stream: int) -> bytes:
    # One integer XOR: 0.2 µs, where a per-byte generator took 1.8 µs of a ~6.5 µs token.
    return (int.from_bytes(data, "big") ^ stream).to_bytes(len(data), "big")


def keyed_hash(secret_key: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 hex of a value under a key derived for one purpose (IPs, erased addresses)."""
    key = hashlib.sha256(b"newsletter.hash." + purpose.encode() + b"\0" + secret_key.encode())
    return hmac.new(key.digest(), value.encode(), "sha256").hexdigest()

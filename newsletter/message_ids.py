"""The Message-ID of an edition email: <token@domain>, the token naming its reader.

    <TOKEN@news.example.org>   TOKEN: a token of purpose message_id (tokens.py, built as
                               the return path's), naming the subscriber, the edition and
                               the reader's link salt; 58 hex characters

The Message-ID is seen by the reader and by whoever they forward to, and comes back quoted
in bounces, complaints and auto-replies, where it attributes the report to its reader
(bounce_policy). So it is sealed and authenticated like the return path: one reader's
Message-ID tells nothing about another's, and names no id in clear (ids are sequential: they
would count the list). It is issued at the edition's creation, not at sending time, so the
crash window's second copy of a delivery has the same Message-ID (mail clients dedupe by it).

Mail sent before this format carried <delivery id.edition tag@domain>, the tag shared by the
whole edition, kept in deliveries.message_id: legacy_delivery_id() reads those, and they
attribute only when the report names that delivery's reader.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email.utils import parseaddr

from newsletter.config import Settings
from newsletter.errors import TokenError
from newsletter.tokens import (
    TokenData,
    TokenSigner,
    message_id_token_maker,
    read_message_id_token,
)


def message_id_domain(settings: Settings) -> str:
    """The right part of our Message-IDs: the From address's domain (else the site's host)."""
    return parseaddr(settings.from_address)[1].rpartition("@")[2] or settings.base_host


def message_id_maker(
    signer: TokenSigner, domain: str, edition_id: int, issued: datetime
) -> Callable[[int, int], str]:
    """A function (subscriber id, link salt) -> the Message-ID of their copy of an edition;
    `issued` is fixed per edition (its creation time), so the id is the same on every send."""

    token = message_id_token_maker(signer, edition_id, issued)
    right = f"@{domain}>"

    def message_id(subscriber_id: int, salt: int) -> str:
        return "<" + token(subscriber_id, salt) + right

    return message_id


def read_message_id(signer: TokenSigner, message_id: str) -> TokenData | None:
    """What a Message-ID of ours names; None for anyone else's, a forged or a garbled one."""
    local = message_id.strip().removeprefix("<").removesuffix(">").rpartition("@")[0]
    try:
        return read_message_id_token(signer, local)
    except TokenError:
        return None


def legacy_delivery_id(message_id: str) -> int | None:
    """The delivery id of a pre-token Message-ID: <1234.tag@host> -> 1234."""
    head = message_id.strip().removeprefix("<").split(".", 1)[0]
    if not head.isascii() or not head.isdigit() or len(head) > 18:
        return None
    return int(head)

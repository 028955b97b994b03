"""The inbound address and its +token forms (NEWSLETTER_INBOUND_ADDRESS).

    inbound@host                          mail without a token: forwarded bounces, feedback loops
    inbound+<return-path token>@host      the envelope sender (VERP) of one delivery
    inbound+<mail-unsubscribe token>@host the List-Unsubscribe mailto: any mail unsubscribes

Both tokens are signed and name the reader (and the edition): only they, or a matching
Message-ID, attribute what comes back to a reader. Any other address is not ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsletter.config import Settings
from newsletter.errors import TokenError
from newsletter.tokens import (
    TokenData,
    TokenPurpose,
    TokenSigner,
    make_address_token,
    read_address_token,
)

MAX_ADDRESS = 320


@dataclass(frozen=True)
class Target:
    """What an address of ours stands for: the bare inbound address (token None) or a token."""

    purpose: TokenPurpose | None
    token: TokenData | None


BARE = Target(None, None)


@dataclass(frozen=True)
class InboundAddress:
    local: str
    domain: str

    @classmethod
    def of(cls, settings: Settings) -> InboundAddress | None:
        """The configured inbound address, or None (then nothing about sending changes)."""
        if not settings.inbound_address:
            return None
        local, _, domain = settings.inbound_address.lower().rpartition("@")
        return cls(local, domain)

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"

    def with_token(self, token: str) -> str:
        return f"{self.local}+{token}@{self.domain}"

    def return_path(
        self, signer: TokenSigner, subscriber_id: int, edition_id: int | None = None, *, salt: int
    ) -> str:
        """The envelope sender for one delivery (or a confirmation email: no edition); `salt`
        is the reader's link salt, as in their links."""
        return self.with_token(
            make_address_token(
                signer, TokenPurpose.return_path, subscriber_id, edition_id, salt=salt
            )
        )

    def unsubscribe_address(
        self, signer: TokenSigner, subscriber_id: int, edition_id: int | None = None, *, salt: int
    ) -> str:
        """The mailto address of List-Unsubscribe: mail to it unsubscribes this reader."""
        return self.with_token(
            make_address_token(
                signer, TokenPurpose.mail_unsubscribe, subscriber_id, edition_id, salt=salt
            )
        )

    def read(self, signer: TokenSigner, address: str) -> Target | None:
        """What an envelope recipient means to us; None when it is not ours (refuse it).

        The local part is compared without regard to case (mail servers differ there); a
        +form whose token does not verify is not ours either.
        """
        address = address.strip().strip("<>")
        if not address or len(address) > MAX_ADDRESS or not address.isascii():
            return None
        local, at, domain = address.rpartition("@")
        if not at or domain.lower().rstrip(".") != self.domain:
            return None
        base, plus, token = local.lower().partition("+")
        if base != self.local:
            return None
        if not plus:
            return BARE
        for purpose in (TokenPurpose.return_path, TokenPurpose.mail_unsubscribe):
            try:
                return Target(purpose, read_address_token(signer, token, purpose))
            except TokenError:
                continue
        return None

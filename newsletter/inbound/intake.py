"""Take one inbound message: keep it raw (committed), then classify and apply the policy.

Storing and processing are two transactions, so a message whose parsing fails is still
there for staff to read (status "failed", with the error), and nothing is half-applied.
"""

from __future__ import annotations

import logging

from newsletter import bounce_policy
from newsletter.bounce_policy import Outcome
from newsletter.errors import ConfigError
from newsletter.returnpath import InboundAddress
from newsletter.runtime import Runtime
from newsletter.tokens import TokenSigner

log = logging.getLogger(__name__)


class Intake:
    """Built once per process from the runtime; shared by the listener's connections."""

    def __init__(self, runtime: Runtime) -> None:
        address = InboundAddress.of(runtime.settings)
        if address is None:
            raise ConfigError(
                "set NEWSLETTER_INBOUND_ADDRESS (e.g. inbound@news.example.org) to receive mail"
            )
        self.address = address
        self.runtime = runtime
        self.settings = runtime.settings
        self.signer = TokenSigner(runtime.settings.secret_key)

    def accepts(self, recipient: str) -> bool:
        """Ours: the inbound address, or its +form with a token that verifies."""
        return self.address.read(self.signer, recipient) is not None

    def take(
        self,
        raw: bytes,
        *,
        recipient: str,
        mail_from: str | None,
        channel: str,
        size: int | None = None,
    ) -> Outcome | None:
        """Store, then process. Raises only when storing fails (the sender should retry);
        a processing failure is logged and recorded on the stored row (None is returned)."""
        with self.runtime.session() as session:
            inbound_id = bounce_policy.store(
                session,
                self.settings,
                raw,
                recipient=recipient,
                mail_from=mail_from,
                channel=channel,
                size=size,
            ).id
        try:
            with self.runtime.session() as session:
                outcome = bounce_policy.process(session, self.settings, self.signer, inbound_id)
        except Exception as exc:  # kept raw with the error: staff can read what broke
            log.error("inbound message %s could not be processed: %s", inbound_id, exc)
            with self.runtime.session() as session:
                bounce_policy.mark_failed(session, inbound_id, f"{type(exc).__name__}: {exc}")
            return None
        log.info(
            "inbound message %s: %s%s",
            inbound_id,
            outcome.kind.value,
            f" for subscriber {outcome.subscriber_id}" if outcome.subscriber_id else "",
        )
        return outcome

    def purge(self) -> int:
        """Erase raw messages past NEWSLETTER_INBOUND_KEEP_DAYS."""
        with self.runtime.session() as session:
            return bounce_policy.purge_raw(session, self.settings)

"""The domain's exceptions; the web app, the CLI and the tasks turn them into messages.

NewsletterError
├── ConfigError                 bad or missing configuration
├── ValidationError             bad input: an address, a language list, a file, a week
│   └── ImportFileError         an edition or subscriber file that cannot be read
├── NotFound                    no such subscriber, edition, staff user...
├── Conflict                    the change collides with what exists (already subscribed...)
├── IllegalTransition           a state change the state machine refuses
├── SubscriptionError           a subscription rule refuses the change
├── TokenError
│   ├── TokenInvalid            tampered, unknown or for another purpose
│   ├── TokenExpired            signed by us, but too old
│   ├── TokenRevoked            signed by us, for a subscription erased or started afresh since
│   └── TokenForTest            signed by us, from a test email: it names no subscriber
├── EditionIncomplete           some articles lack a language and no fallback was chosen
└── DeliveryError
    ├── TemporaryDeliveryError  4xx, connection lost, server down: retry later
    ├── PermanentDeliveryError  5xx for a recipient: fail it and suppress a hard bounce
    └── SendPaused              the send stopped for a fault not the readers' (disk, relay auth)
"""

from __future__ import annotations


class NewsletterError(Exception):
    """Base of every error the product raises on purpose."""


class ConfigError(NewsletterError):
    """The configuration is missing or wrong."""


class ValidationError(NewsletterError):
    """Input that breaks a rule: an address, languages, a week, a file."""


class ImportFileError(ValidationError):
    """A file that cannot be imported; the message names the file and the place."""


class NotFound(NewsletterError):
    """The thing asked for does not exist."""


class Conflict(NewsletterError):
    """The change collides with what already exists."""


class IllegalTransition(NewsletterError):
    """A state machine refuses the requested move."""


class SubscriptionError(NewsletterError):
    """A subscription rule refuses the change."""


class TokenError(NewsletterError):
    """A link token that cannot be used."""


class TokenInvalid(TokenError):
    """Tampered, unknown, or meant for another purpose."""


class TokenExpired(TokenError):
    """Genuine but past its lifetime."""


class TokenRevoked(TokenError):
    """Genuine, but its subscription has been erased or started afresh since: acts on nobody."""


class TokenForTest(TokenError):
    """A genuine link from a test email: it belongs to no subscription and changes nothing."""


class EditionIncomplete(NewsletterError):
    """Articles lack a language and no fallback language was chosen."""


class DeliveryError(NewsletterError):
    """A message could not be handed to the mail server."""


class TemporaryDeliveryError(DeliveryError):
    """Worth retrying later: 4xx, dropped connection, server down."""


class PermanentDeliveryError(DeliveryError):
    """Will never succeed for this recipient: 5xx."""


class SendPaused(DeliveryError):
    """An edition's send is paused, for staff or for a fault that is not the readers'."""

"""`newsletter inbound --imap imaps://user:pass@host/INBOX [--every S]`: read returned mail
from a mailbox, for hosts that cannot run a listener.

Each message is stored and processed like one the listener received, then deleted, or moved
to the folder named by `?processed=Folder`. A message that cannot be stored (the database is
away) stays in the mailbox for the next pass. URL forms:

    imaps://user:pass@host[:993]/INBOX      implicit TLS (the usual)
    imap://user:pass@host[:143]/INBOX       STARTTLS, refused if the server does not offer it
    ...?verify=0                            accept a self-signed certificate
    ...?processed=Processed                 move, rather than delete, what was processed
"""

from __future__ import annotations

import email
import imaplib
import logging
import re
import ssl
from dataclasses import dataclass
from email.policy import compat32
from email.utils import getaddresses
from urllib.parse import parse_qs, unquote, urlsplit

from newsletter.errors import ConfigError
from newsletter.inbound.intake import Intake

log = logging.getLogger(__name__)

BATCH = 200  # messages read in one pass at most
TIMEOUT = 60.0
# Where the delivering server wrote the envelope recipient, most trusted first.
RECIPIENT_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "to", "cc")
_SIZE_RE = re.compile(rb"RFC822\.SIZE (\d+)")


class ImapError(Exception):
    """The mailbox could not be read this pass (login, network, folder)."""


@dataclass(frozen=True)
class ImapSource:
    host: str
    port: int
    implicit_tls: bool
    username: str
    password: str
    mailbox: str
    verify: bool
    processed: str | None  # folder to move processed mail to; None: delete it

    @classmethod
    def from_url(cls, url: str) -> ImapSource:
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise ConfigError("the mailbox must be an imaps://user:pass@host/INBOX URL")
        if not parts.username or parts.password is None:
            raise ConfigError("the mailbox URL needs a user and a password (user:pass@host)")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"bad port in the mailbox URL: {exc}") from exc
        implicit = parts.scheme == "imaps"
        mailbox = unquote(parts.path.lstrip("/")) or "INBOX"
        processed = query.get("processed") or None
        for folder in (mailbox, processed or ""):
            if any(ch in folder for ch in '\r\n"\\') or len(folder) > 200:
                raise ConfigError(f"not a usable folder name: {folder!r}")
        return cls(
            host=parts.hostname,
            port=port or (993 if implicit else 143),
            implicit_tls=implicit,
            username=unquote(parts.username),
            password=unquote(parts.password),
            mailbox=mailbox,
            verify=query.get("verify", "1").lower() not in ("0", "no", "false"),
            processed=processed,
        )

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def connect(self) -> imaplib.IMAP4:
        try:
            if self.implicit_tls:
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    self.host, self.port, ssl_context=self.context(), timeout=TIMEOUT
                )
            else:
                imap = imaplib.IMAP4(self.host, self.port, timeout=TIMEOUT)
                imap.starttls(self.context())  # refuses a server without STARTTLS
            imap.login(self.username, self.password)
            typ, _ = imap.select(_quoted(self.mailbox))
            if typ != "OK":
                raise ImapError(f"no folder {self.mailbox!r} in the mailbox")
            return imap
        except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
            raise ImapError(f"cannot read the mailbox at {self.host}:{self.port}: {exc}") from exc


def _quoted(folder: str) -> str:
    return f'"{folder}"'


def poll_once(source: ImapSource, intake: Intake) -> int:
    """One pass over the folder: store and process each message, then delete or move it.
    Returns how many were taken; ImapError when the mailbox cannot be read."""
    imap = source.connect()
    taken = 0
    try:
        # Flagged \Deleted but not expunged (a pass that stopped half-way): done already.
        typ, data = imap.uid("SEARCH", "UNDELETED")
        if typ != "OK":
            raise ImapError(f"the mailbox refused SEARCH: {data!r}")
        uids = [u.decode("ascii") for u in (data[0] or b"").split()[:BATCH]]
        for uid in uids:
            fetched = _fetch(imap, uid, intake.settings.inbound_max_bytes)
            if fetched is None:
                continue
            raw, size = fetched
            intake.take(
                raw,
                recipient=_recipient(raw, intake),
                mail_from=None,
                channel="imap",
                size=size,
            )
            _done(imap, source, uid)
            taken += 1
    except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
        raise ImapError(f"the mailbox connection failed: {exc}") from exc
    finally:
        try:
            if taken:
                imap.expunge()
            imap.logout()
        except (OSError, imaplib.IMAP4.error, ssl.SSLError):
            pass
    return taken


def _fetch(imap: imaplib.IMAP4, uid: str, limit: int) -> tuple[bytes, int] | None:
    """The message's first `limit` bytes and its full size (never more is read)."""
    typ, data = imap.uid("FETCH", uid, f"(RFC822.SIZE BODY.PEEK[]<0.{limit}>)")
    if typ != "OK":
        return None
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            match = _SIZE_RE.search(item[0])
            raw = bytes(item[1])
            return raw, int(match.group(1)) if match else len(raw)
    return None


def _recipient(raw: bytes, intake: Intake) -> str:
    """The envelope recipient as the delivering server wrote it, when it is one of ours."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0][:65536]
    headers = email.message_from_bytes(head, policy=compat32)
    for name in RECIPIENT_HEADERS:
        for _name, address in getaddresses([str(v) for v in headers.get_all(name, [])][:20]):
            if address and intake.accepts(address):
                return address
    return str(intake.address)


def _done(imap: imaplib.IMAP4, source: ImapSource, uid: str) -> None:
    if source.processed:
        typ, data = imap.uid("COPY", uid, _quoted(source.processed))
        if typ != "OK":
            raise ImapError(f"cannot move mail to {source.processed!r}: {data!r}")
    imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")

"""What came back: classify one inbound message as a bounce, a complaint or an auto-reply.

Read in this order, the first that matches wins:
1. RFC 5965 feedback report (multipart/report; a message/feedback-report part): complaint.
2. RFC 3464 delivery status notification (a message/delivery-status part): per recipient,
   Action "failed" with status 5.x.x is a hard bounce, 4.x.x a soft one; "delayed" is a
   warning. X.2.2 (mailbox full) and X.7.x (policy, spam blocks) are soft whatever their
   class: the address exists.
3. The non-standard bounces of common MTAs, by flufl.bounce (Mailman's detectors).
4. RFC 3834 auto-replies (Auto-Submitted, X-Autoreply, Precedence: auto_reply...): ignored.
5. Anything else: unknown, kept for staff.

Hostile input: the message is at most the inbound size limit, parsed with a bounded walk
(MAX_PARTS parts, MAX_DEPTH levels); any parsing failure is unknown, never an exception.
This module only reads: it names the candidates for attribution (the original Message-ID,
the original return path, the failed recipients); bounce_policy decides whom they concern.
"""

from __future__ import annotations

import email
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import parseaddr

from newsletter.models import InboundKind

log = logging.getLogger(__name__)

MAX_PARTS = 64
MAX_DEPTH = 6
MAX_CANDIDATES = 8
_FIELD_CHARS = 500  # stored diagnostic texts are cut here

_STATUS_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")
_MESSAGE_ID_RE = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")
# Original headers quoted as text in non-standard bounces (Exim, qmail...).
_QUOTED_HEADER_RE = re.compile(
    rb"^[ \t>]*(message-id|return-path)[ \t]*:[ \t]*(<[^>\r\n]{1,500}>)", re.I | re.M
)
_AUTO_SUBJECT_RE = re.compile(
    r"^(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|vacation|"
    r"abwesenheit|absence|автоответ|автоматический ответ)",
    re.I,
)


@dataclass(frozen=True)
class Failure:
    """One recipient a report speaks of."""

    address: str  # Final-Recipient (or Original-Recipient), lower-cased; "" when redacted
    status: str  # "5.1.1"; "" when the report gave none
    kind: InboundKind  # hard_bounce, soft_bounce or delayed
    diagnostic: str = ""


@dataclass
class Report:
    """The classification of one message, and what it offers for attribution."""

    kind: InboundKind
    reason: str  # one line for staff: which rule decided, and the status or feedback type
    failures: list[Failure] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)  # of the original message
    return_paths: list[str] = field(default_factory=list)  # envelope senders of the original
    original_recipients: list[str] = field(default_factory=list)  # ARF Original-Rcpt-To

    def detail(self) -> dict[str, object]:
        """JSON for the stored row and its event."""
        out: dict[str, object] = {"reason": self.reason[:_FIELD_CHARS]}
        if self.failures:
            out["recipients"] = [
                {"address": f.address, "status": f.status, "diagnostic": f.diagnostic}
                for f in self.failures[:MAX_CANDIDATES]
            ]
        return out


def classify(raw: bytes) -> Report:
    """Classify one raw message; never raises (unparseable input is unknown)."""
    try:
        message = email.message_from_bytes(raw, policy=compat32)
        parts = list(_walk(message))
        return _classify(message, parts)
    except Exception as exc:  # hostile input may break the email package in many ways
        log.warning("inbound message not understood: %s", exc)
        return Report(InboundKind.unknown, f"unparseable: {type(exc).__name__}")


def _walk(message: Message) -> Iterator[Message]:
    """Every part, breadth-first, at most MAX_PARTS and MAX_DEPTH deep (MIME bombs)."""
    queue: list[tuple[Message, int]] = [(message, 0)]
    seen = 0
    while queue and seen < MAX_PARTS:
        part, depth = queue.pop(0)
        seen += 1
        yield part
        if depth >= MAX_DEPTH:
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            queue.extend((p, depth + 1) for p in payload[:MAX_PARTS] if isinstance(p, Message))


def _classify(message: Message, parts: list[Message]) -> Report:
    by_type: dict[str, Message] = {}
    for part in parts:
        by_type.setdefault(part.get_content_type(), part)
    original = _original_headers(by_type)
    report = None
    if "message/feedback-report" in by_type:
        report = _feedback(by_type["message/feedback-report"])
    elif "message/delivery-status" in by_type:
        report = _dsn(by_type["message/delivery-status"])
    if report is None:
        report = _nonstandard(message) or _auto_reply(message)
    if report is None:
        report = Report(InboundKind.unknown, "not a bounce, complaint or auto-reply we know")
    if original is not None:
        report.message_ids += _ids(original.get_all("message-id", []))
        report.return_paths += _addresses(original.get_all("return-path", []))
    else:
        report.message_ids += _quoted(parts, b"message-id")
        report.return_paths += _quoted(parts, b"return-path")
    if report.kind is InboundKind.auto_reply:
        # An auto-reply answers the message itself (RFC 3834 §3.1.5 keeps these).
        report.message_ids += _ids(message.get_all("in-reply-to", []))
        report.message_ids += _ids(message.get_all("references", []))
    report.message_ids = list(dict.fromkeys(report.message_ids))[:MAX_CANDIDATES]
    report.return_paths = list(dict.fromkeys(report.return_paths))[:MAX_CANDIDATES]
    return report


# --------------------------------------------------------------------------- the original


def _original_headers(by_type: dict[str, Message]) -> Message | None:
    """The headers of the message that bounced (message/rfc822 or text/rfc822-headers)."""
    for content_type in ("message/rfc822", "text/rfc822-headers"):
        part = by_type.get(content_type)
        if part is None:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        text = part.get_payload(decode=True)
        if isinstance(text, bytes):
            return HeaderParser(policy=compat32).parsestr(text.decode("utf-8", "replace"))
    return None


def _quoted(parts: list[Message], name: bytes) -> list[str]:
    """Original headers quoted in a text body (Exim: "a copy of the message, including all
    the headers")."""
    found: list[str] = []
    for part in parts:
        if part.get_content_maintype() != "text":
            continue
        body = part.get_payload(decode=True)
        if not isinstance(body, bytes):
            continue
        for match in _QUOTED_HEADER_RE.finditer(body[:262_144]):
            if match.group(1).lower() == name:
                found.append(match.group(2).decode("ascii", "replace"))
            if len(found) >= MAX_CANDIDATES:
                return _ids(found) if name == b"message-id" else _addresses(found)
    return _ids(found) if name == b"message-id" else _addresses(found)


def _ids(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        out += _MESSAGE_ID_RE.findall(str(value)[:4000])
    return out[:MAX_CANDIDATES]


def _addresses(values: list[str]) -> list[str]:
    out = []
    for value in values[:MAX_CANDIDATES]:
        address = parseaddr(str(value)[:1000])[1].strip().lower()
        if address and address.isascii():
            out.append(address)
    return out


# --------------------------------------------------------------------------- reports


def _fields(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload[:MAX_PARTS] if isinstance(p, Message)]
    if isinstance(payload, str):  # some MTAs send it base64-encoded: parse the text
        text = part.get_payload(decode=True)
        if isinstance(text, bytes):
            blocks = re.split(r"\r?\n\r?\n", text.decode("utf-8", "replace"))[:MAX_PARTS]
            return [HeaderParser(policy=compat32).parsestr(b) for b in blocks if b.strip()]
    return []


def _typed_value(value: str | None) -> str:
    """ "rfc822; someone@example.org" -> "someone@example.org"."""
    if not value:
        return ""
    _type, _, rest = str(value).partition(";")
    return " ".join((rest or _type).split())


def _dsn(part: Message) -> Report | None:
    blocks = _fields(part)
    failures: list[Failure] = []
    for block in blocks[1:] or blocks:  # the first block is per-message (RFC 3464 §2.2)
        action = str(block.get("action", "")).strip().lower()
        status = str(block.get("status", "")).strip().split(" ")[0]
        recipient = _typed_value(block.get("final-recipient")) or _typed_value(
            block.get("original-recipient")
        )
        if not action and not recipient:
            continue
        kind = _dsn_kind(action, status)
        if kind is None:  # delivered, relayed, expanded: nothing went wrong
            continue
        failures.append(
            Failure(
                address=_addresses([recipient])[0] if _addresses([recipient]) else "",
                status=status if _STATUS_RE.match(status) else "",
                kind=kind,
                diagnostic=_typed_value(block.get("diagnostic-code"))[:_FIELD_CHARS],
            )
        )
    if not failures:
        return Report(InboundKind.unknown, "a delivery status notification without failures")
    worst = _worst(failures)
    statuses = ", ".join(sorted({f.status for f in failures if f.status})) or "no status"
    return Report(worst, f"DSN: {worst.value} ({statuses})", failures=failures)


def _dsn_kind(action: str, status: str) -> InboundKind | None:
    match = _STATUS_RE.match(status)
    if action == "delayed":
        return InboundKind.delayed
    if action != "failed":
        return None if action in ("delivered", "relayed", "expanded") else InboundKind.unknown
    if match is None:
        return InboundKind.hard_bounce  # failed, with no usable status: the server gave up
    klass, subject, detail = match.groups()
    if klass == "4" or (subject, detail) == ("2", "2") or subject == "7":
        return InboundKind.soft_bounce
    return InboundKind.hard_bounce if klass == "5" else None


_SEVERITY = (
    InboundKind.hard_bounce,
    InboundKind.soft_bounce,
    InboundKind.delayed,
    InboundKind.unknown,
)


def _worst(failures: list[Failure]) -> InboundKind:
    return min((f.kind for f in failures), key=_SEVERITY.index)


def _feedback(part: Message) -> Report:
    blocks = _fields(part)
    block = blocks[0] if blocks else Message()
    feedback_type = str(block.get("feedback-type", "")).strip().lower()[:40] or "unspecified"
    report = Report(InboundKind.complaint, f"ARF feedback report: {feedback_type}")
    report.return_paths += _addresses(block.get_all("original-mail-from", []))
    report.original_recipients += _addresses(block.get_all("original-rcpt-to", []))
    return report


def _nonstandard(message: Message) -> Report | None:
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(message)
    except Exception as exc:  # a detector choking on hostile input is "not recognised"
        log.info("flufl.bounce could not read a message: %s", exc)
        return None
    failures = [
        Failure(_decode_address(a), "", InboundKind.hard_bounce)
        for a in sorted(permanent)[:MAX_CANDIDATES]
    ] + [
        Failure(_decode_address(a), "", InboundKind.soft_bounce)
        for a in sorted(temporary - permanent)[:MAX_CANDIDATES]
    ]
    failures = [f for f in failures if f.address]
    if not failures:
        return None
    worst = _worst(failures)
    return Report(worst, f"non-standard bounce (flufl.bounce): {worst.value}", failures=failures)


def _decode_address(value: bytes | str) -> str:
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    found = _addresses([text])
    return found[0] if found else ""


def _auto_reply(message: Message) -> Report | None:
    auto_submitted = str(message.get("auto-submitted", "")).strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return Report(InboundKind.auto_reply, f"auto-reply (Auto-Submitted: {auto_submitted[:40]})")
    for name in ("x-autoreply", "x-autorespond", "x-autogenerated"):
        if message.get(name) is not None:
            return Report(InboundKind.auto_reply, f"auto-reply ({name})")
    precedence = str(message.get("precedence", "")).strip().lower()
    if precedence in ("auto_reply", "auto-reply"):
        return Report(InboundKind.auto_reply, "auto-reply (Precedence)")
    subject = _header_text(message.get("subject"))
    if _AUTO_SUBJECT_RE.match(subject.strip()):
        return Report(InboundKind.auto_reply, "auto-reply (by its subject)")
    return None


def _header_text(value: object) -> str:
    if value is None:
        return ""
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(str(value)[:2000])))
    except (ValueError, LookupError, UnicodeError):
        return str(value)[:2000]


def recipients_of(report: Report) -> list[str]:
    """Every address the report names as the failed or complaining recipient."""
    return [f.address for f in report.failures if f.address] + report.original_recipients

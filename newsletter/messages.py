"""MIME messages: built ONCE per language variant, personalised per recipient by a bytes join.

A variant is rendered with ASCII placeholder tokens where the personal parts go, turned into
a complete RFC 5322 message with the email package, and split at the tokens. Bodies are
quoted-printable, encoded here so that every token sits alone on its own line between soft
line breaks ("=\\r\\n"): a substituted value is QP-encoded on its own lines (never starting
with a dot), so the template can be dot-stuffed for SMTP once, at preparation.
"""

from __future__ import annotations

import binascii
import html
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.policy import compat32
from email.utils import formataddr, formatdate, parseaddr
from io import BytesIO
from urllib.parse import quote

from sqlalchemy.orm import Session

from newsletter import i18n
from newsletter.config import Settings
from newsletter.editions import check_sendable
from newsletter.errors import ConfigError, ValidationError
from newsletter.languages import parse_languages
from newsletter.links import unsubscribe_url
from newsletter.models import Edition
from newsletter.rendering import inline_css, render_edition, render_email
from newsletter.transport import dot_stuff

# The length of a real unsubscribe token, so previews weigh what real messages weigh.
_PREVIEW_TOKEN = "preview-AAAAAAAAAAAAAAAAAAAAAAAAAAAA"
_PREVIEW_ADDRESS_TOKEN = "preview" + "a" * 35

# Signed with the message: the one-click headers must be covered (RFC 8058 §4).
DKIM_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
)

_ADDRESS_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$")
_MESSAGE_ID_RE = re.compile(r"^<[!-;=?-~]+@[!-;=?-~]+>$")
_URL_RE = re.compile(r"^https?://[!#-;=?-~]+$")  # printable ASCII without space, quotes, < >
_QP_LINE = 75  # a QP line holds 76 characters, the last one a soft break's '='
_QP_PLAIN = bytes(range(0x20, 0x7F)).replace(b"=", b"")  # bytes QP leaves as they are
_ATOM_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/?^_`{|}~ -]+$")  # needs no quoting
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Recipient:
    """Whom one copy is for; the caller picks the Message-ID (deterministic per delivery)."""

    email: str
    name: str | None
    unsubscribe_url: str
    message_id: str  # "<...@host>"
    # inbound+<token>@host (returnpath.InboundAddress.unsubscribe_address); None: no mailto.
    unsubscribe_mailto: str | None = None


# --------------------------------------------------------------------------- values


def _qp(value: str) -> bytes:
    """QP-encode a substituted value: CRLF soft breaks, no line starting with a dot."""
    data = value.encode("utf-8")
    # Printable ASCII but '=', no edge space: valid QP once folded. A byte scan, not a regex.
    if not data.translate(None, _QP_PLAIN) and data[:1] != b" " and data[-1:] != b" ":
        folded = _fold(data)
        if folded is not None:
            return folded
    out = binascii.b2a_qp(data, quotetabs=True, istext=False)
    if out.startswith(b"."):
        out = b"=2E" + out[1:]
    return out.replace(b"=\n.", b"=\n=2E").replace(b"\n", b"\r\n")


def _fold(data: bytes) -> bytes | None:
    """Text that is valid QP as it is, cut into lines of 75, each followed by '=' (the
    template puts one after the last), as b2a_qp would at a tenth of its cost; None when a
    line would start with a dot."""
    if data[:1] == b".":
        return None
    if len(data) <= _QP_LINE:
        return data
    folded = b"=\r\n".join([data[i : i + _QP_LINE] for i in range(0, len(data), _QP_LINE)])
    return None if b"\n." in folded else folded


def clean_name(name: str | None) -> str:
    """A display name on one line: control characters (CR, LF...) removed, length capped."""
    if not name:
        return ""
    return " ".join(_CONTROL_RE.sub(" ", name).split())[:200]


def clean_address(email: str) -> str:
    """An address safe for a header: ASCII (IDNA domain), no spaces or brackets."""
    address = email.strip()
    if not address.isascii():
        local, _, domain = address.rpartition("@")
        try:
            address = f"{local}@{domain.encode('idna').decode('ascii')}"
        except UnicodeError as exc:
            raise ValidationError(f"not a deliverable address: {email!r}") from exc
    if not _ADDRESS_RE.match(address):
        raise ValidationError(f"not a deliverable address: {email!r}")
    return address


def _check_url(url: str) -> str:
    if not _URL_RE.match(url):
        raise ValidationError(f"not a usable link for an email: {url[:80]!r}")
    return url


def encode_word(text: str) -> str:
    """RFC 2047 base64 encoded-words (each <= 75 chars), folded with CRLF + space."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        length = len(char.encode("utf-8"))
        if size + length > 45:  # 45 bytes -> 60 base64 chars + 12 of "=?utf-8?b?...?="
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += length
    words.append("".join(chunk))
    return "\r\n ".join(
        f"=?utf-8?b?{binascii.b2a_base64(w.encode('utf-8'), newline=False).decode()}?="
        for w in words
    )


def address_header(email: str, name: str | None) -> str:
    """'Name <addr>' with the name quoted or RFC 2047-encoded as needed."""
    address, display = clean_address(email), clean_name(name)
    if not display:
        return address
    if _ATOM_NAME_RE.match(display):
        return f"{display} <{address}>"
    if display.isascii() and "=?" not in display:
        return formataddr((display, address))
    return f"{encode_word(display)} <{address}>"


def list_unsubscribe_headers(url: str, mailto: str | None) -> bytes:
    """List-Unsubscribe written pre-folded (never encoded-words), https first, then the
    reader's own mailto address when there is one (RFC 2369), and the RFC 8058 one-click
    header whenever the link is https."""
    uris = [f"<{_check_url(url)}>"]
    if mailto:
        uris.append(f"<mailto:{clean_address(mailto)}?subject={quote('unsubscribe')}>")
    lines = "List-Unsubscribe: " + ",\r\n ".join(uris) + "\r\n"
    if url.startswith("https://"):
        lines += "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    return lines.encode("ascii")


_date_cache: tuple[int, bytes] = (0, b"")


def _date_header() -> bytes:
    """RFC 5322 date of now, formatted once per second (the hot loop calls it)."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]


# --------------------------------------------------------------------------- template


class _Tokens:
    """The placeholders of one template: `@@nl<nonce>:<kind>@@`, where the nonce is 128 random
    bits drawn after the content is fixed (staff text, topic names, the subject are already
    in hand when a variant is prepared) and never shown anywhere. Only this nonce and the known
    kinds are split on, so text shaped like a placeholder, whoever typed it, stays text."""

    KINDS = (
        "to",
        "date",
        "message_id",
        "list_headers",
        "greeting_html",
        "greeting_text",
        "unsub_html",
        "unsub_text",
    )

    def __init__(self) -> None:
        self.nonce = secrets.token_hex(16)
        kinds = "|".join(self.KINDS)
        self.pattern = re.compile(rf"(@@nl{self.nonce}:(?:{kinds})@@)")
        self.bytes_pattern = re.compile(rf"@@nl{self.nonce}:({kinds})@@".encode("ascii"))

    def __getitem__(self, kind: str) -> str:
        if kind not in self.KINDS:
            raise KeyError(kind)
        return f"@@nl{self.nonce}:{kind}@@"


def _qp_body(content: str, tokens: _Tokens) -> str:
    """QP-encode text holding tokens; each token alone on a line between soft breaks."""
    content = content.replace("\r\n", "\n")
    pieces = tokens.pattern.split(content)
    out: list[str] = []
    for index, piece in enumerate(pieces):
        if index % 2:
            out.append(f"=\n{piece}=\n")
        elif piece:
            out.append(binascii.b2a_qp(piece.encode("utf-8"), istext=True).decode("ascii"))
    body = "".join(out)
    return body if body.endswith("\n") else body + "=\n"


def _text_part(content: str, subtype: str, tokens: _Tokens) -> Message:
    part = Message()
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(_qp_body(content, tokens))
    return part


def _from_header(settings: Settings) -> str:
    name, address = parseaddr(settings.from_address)
    if not address:
        raise ConfigError(f"NEWSLETTER_FROM is not an address: {settings.from_address!r}")
    return address_header(address, name)


def _load_dkim(settings: Settings) -> tuple[bytes, bytes, bytes] | None:
    if not (settings.dkim_key_file and settings.dkim_selector and settings.dkim_domain):
        return None
    try:
        key = settings.dkim_key_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the DKIM key {settings.dkim_key_file}: {exc}") from exc
    return settings.dkim_selector.encode(), settings.dkim_domain.encode(), key


class MessageTemplate:
    """One prepared variant: render() joins bytes; render_smtp() joins pre-stuffed bytes."""

    def __init__(
        self,
        settings: Settings,
        *,
        languages: tuple[str, ...],
        subject: str,
        text: str,
        html_body: str,
        tokens: _Tokens,
        list_message: bool = True,
    ) -> None:
        self.languages = languages
        self.subject = subject
        self._list_message = list_message
        self._dkim = _load_dkim(settings)
        tr = i18n.translations(languages[0])
        self._greet_named = tr.gettext("Hello, %(name)s!")
        plain = tr.gettext("Hello!")
        self._greet_plain = {"greeting_html": _qp(html.escape(plain)), "greeting_text": _qp(plain)}

        msg = Message()
        msg["From"] = _from_header(settings)
        msg["To"] = tokens["to"]
        # A Header, not a str: the policies fold a Cyrillic subject so that a space is lost.
        msg["Subject"] = Header(  # type: ignore[assignment]
            subject, "us-ascii" if subject.isascii() else "utf-8", header_name="Subject"
        )
        msg["Date"] = tokens["date"]
        msg["Message-ID"] = tokens["message_id"]
        if list_message:
            msg["List-Id"] = f"{i18n.DIGEST_TITLE} <{settings.list_id_value}>"
            msg["List-Unsubscribe"] = tokens["list_headers"]
        msg["MIME-Version"] = "1.0"
        msg["Content-Language"] = ", ".join(languages)
        msg.add_header(
            "Content-Type", "multipart/alternative", boundary=f"=_nl{secrets.token_hex(12)}"
        )
        msg.attach(_text_part(text, "plain", tokens))
        msg.attach(_text_part(html_body, "html", tokens))
        buffer = BytesIO()
        BytesGenerator(buffer, mangle_from_=False, policy=compat32.clone(linesep="\r\n")).flatten(
            msg
        )
        data = buffer.getvalue()
        # The whole List-Unsubscribe line becomes one placeholder: its value and whether
        # List-Unsubscribe-Post follows depend on the recipient's link.
        data = data.replace(
            f"List-Unsubscribe: {tokens['list_headers']}\r\n".encode(),
            tokens["list_headers"].encode(),
        )
        self._pieces, self._kinds = self._split(data, tokens)
        stuffed = dot_stuff(data)  # SMTP's framing, done once per variant
        self._smtp_pieces, _ = self._split(stuffed, tokens)

    @staticmethod
    def _split(data: bytes, tokens: _Tokens) -> tuple[list[bytes], list[str]]:
        parts = tokens.bytes_pattern.split(data)
        return parts[0::2], [kind.decode() for kind in parts[1::2]]

    def _values(self, recipient: Recipient) -> dict[str, bytes]:
        if not _MESSAGE_ID_RE.match(recipient.message_id):
            raise ValidationError(f"not a Message-ID: {recipient.message_id[:80]!r}")
        name = clean_name(recipient.name)
        url = recipient.unsubscribe_url
        values = {
            "to": address_header(recipient.email, name).encode("ascii"),
            "date": _date_header(),
            "message_id": recipient.message_id.encode("ascii"),
        }
        if name:
            greeting = self._greet_named % {"name": name}
            values["greeting_html"] = _qp(html.escape(greeting))
            values["greeting_text"] = _qp(greeting)
        else:
            values.update(self._greet_plain)  # QP-encoded once per variant
        if self._list_message:
            # list_unsubscribe_headers checks the link: printable ASCII, no space, quote or
            # angle bracket. Unless it holds '&' or "'", HTML writes it as it is.
            values["list_headers"] = list_unsubscribe_headers(url, recipient.unsubscribe_mailto)
            text = values["unsub_text"] = _qp(url)
            escaped = "&" in url or "'" in url
            values["unsub_html"] = _qp(html.escape(url)) if escaped else text
        return values

    def _parts(self, pieces: list[bytes], values: dict[str, bytes]) -> list[bytes]:
        out = [pieces[0]]
        for kind, piece in zip(self._kinds, pieces[1:], strict=True):
            out.append(values[kind])
            out.append(piece)
        return out

    def _sign(self, message: bytes) -> bytes:
        import dkim  # dkimpy: imported only when signing is configured

        assert self._dkim is not None
        selector, domain, key = self._dkim
        headers = [h for h in DKIM_HEADERS if self._list_message or not h.startswith(b"list")]
        return dkim.sign(message, selector, domain, key, include_headers=headers, linesep=b"\r\n")

    def render(self, recipient: Recipient) -> bytes:
        """The whole message for one recipient, CRLF line ends, DKIM-signed if configured."""
        message = b"".join(self._parts(self._pieces, self._values(recipient)))
        return self._sign(message) + message if self._dkim else message

    def render_smtp_parts(self, recipient: Recipient) -> list[bytes]:
        """The same message dot-stuffed for SMTP DATA (without the final '.'), as the buffers
        that make it up: a socket takes them as they are, without a copy of the whole."""
        values = self._values(recipient)
        stuffed = self._parts(self._smtp_pieces, values)
        if self._dkim:
            stuffed.insert(0, self._sign(b"".join(self._parts(self._pieces, values))))
        return stuffed

    def render_smtp(self, recipient: Recipient) -> bytes:
        """render_smtp_parts joined."""
        return b"".join(self.render_smtp_parts(recipient))


# --------------------------------------------------------------------------- entry points


def _edition_placeholders(tokens: _Tokens) -> dict[str, str]:
    return {
        "unsubscribe_url": tokens["unsub_html"],
        "greeting_html": tokens["greeting_html"],
        "greeting_text": tokens["greeting_text"],
    }


def prepare_variant(
    session: Session,
    settings: Settings,
    edition: Edition,
    languages: Sequence[str],
    *,
    fallback_language: str | None = None,
    test: bool = False,
) -> MessageTemplate:
    """Render, inline and build one ordered language set (`test`: a marked staff copy)."""
    tokens = _Tokens()
    variant = render_edition(
        session,
        settings,
        edition,
        languages,
        fallback_language=fallback_language,
        placeholders=_edition_placeholders(tokens),
        test=test,
    )
    # The text part takes the raw link: swap the HTML token for the text one there.
    text = variant.text.replace(tokens["unsub_html"], tokens["unsub_text"])
    return MessageTemplate(
        settings,
        languages=variant.languages,
        subject=variant.subject,
        text=text,
        html_body=variant.html,
        tokens=tokens,
    )


def prepare_edition_messages(
    session: Session,
    settings: Settings,
    edition: Edition,
    language_sets: Iterable[tuple[str, ...] | Sequence[str] | str],
    *,
    fallback_language: str | None = None,
    test: bool = False,
) -> dict[tuple[str, ...], MessageTemplate]:
    """One MessageTemplate per distinct ordered language set, each rendered and inlined once;
    EditionIncomplete when a set needs a text that is missing and no fallback covers it."""
    sets = list(dict.fromkeys(parse_languages(s) for s in language_sets))
    if not sets:
        return {}
    check_sendable(edition, fallback_language, languages={lang for s in sets for lang in s})
    return {
        langs: prepare_variant(
            session, settings, edition, langs, fallback_language=fallback_language, test=test
        )
        for langs in sets
    }


def confirmation_message(
    settings: Settings,
    *,
    lang: str,
    email: str,
    confirm_url: str,
    message_id: str,
) -> bytes:
    """The double opt-in email (templates/email/confirmation/), ready to send.

    It carries nothing the stranger who filled in the form wrote: no name in To or in the
    greeting (the address is unconfirmed; whoever typed it may not own it), only our words
    and the link."""
    tokens = _Tokens()
    context = {
        "lang": lang,
        "title": i18n.digest_title(lang),
        "greeting": tokens["greeting_html"],
        "confirm_url": _check_url(confirm_url),
        "postal_address": settings.postal_address,
    }
    subject, text, raw_html = render_email("confirmation", lang, context)
    text = text.replace(tokens["greeting_html"], tokens["greeting_text"])
    template = MessageTemplate(
        settings,
        languages=(lang,),
        subject=subject,
        text=text,
        html_body=inline_css(raw_html),
        tokens=tokens,
        list_message=False,
    )
    return template.render(
        Recipient(email=email, name=None, unsubscribe_url="", message_id=message_id)
    )


def preview_message(
    session: Session,
    settings: Settings,
    edition: Edition,
    languages: Sequence[str],
    *,
    fallback_language: str | None = None,
    to: str = "reader@example.org",
) -> bytes:
    """One variant as a subscriber would receive it (a sample unsubscribe link)."""
    langs = parse_languages(languages)
    template = prepare_edition_messages(
        session, settings, edition, [langs], fallback_language=fallback_language
    )[langs]
    inbound = settings.inbound_address
    recipient = Recipient(
        email=to,
        name=None,
        unsubscribe_url=unsubscribe_url(settings.base_url, _PREVIEW_TOKEN),
        message_id=f"<preview.{edition.week}.{'-'.join(langs)}@{settings.base_host}>",
        unsubscribe_mailto=inbound.replace("@", f"+{_PREVIEW_ADDRESS_TOKEN}@") if inbound else None,
    )
    return template.render(recipient)

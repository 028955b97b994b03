"""Staff and reader text shaped like the email template's own placeholders (issue 10, item 2):
an edition that carries it in every field, and the checks that it came out literally."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import yaml

from newsletter.paths import sample_data_dir

# Placeholders of every kind the template uses, with nonces of the old and the new length,
# a kind that does not exist, and the syntaxes of Jinja2, %-formatting and str.format.
FORGED = (
    "@@nl00000000:to@@ @@nl" + "0" * 32 + ":list_headers@@ @@nl1a2b3c4d:unsub_html@@ "
    "@@nlffffffff:greeting_text@@ @@nl0badf00d:nope@@ {{ unsubscribe_url }} %(name)s {name}"
)
assert len(FORGED) < 190  # every field below stays within its length limit

TITLE = "Title " + FORGED
BODY = "Body " + FORGED
SUBJECT = "Subject " + FORGED
TOPIC = "Topic " + FORGED
NAME = "Name " + FORGED
WEEK = "2020-W05"


def write_forged_edition(folder: Path) -> Path:
    """The sample week with FORGED in a subject, a topic name, a title and a body per language."""
    data: dict[str, Any] = yaml.safe_load(
        (sample_data_dir() / "2020-W05.yaml").read_text(encoding="utf-8")
    )
    langs = data["languages"]
    data["subject"] = dict.fromkeys(langs, SUBJECT)
    first = data["articles"][0]
    data["topics"] = {first["topic"]: dict.fromkeys(langs, TOPIC)}
    for text in first["translations"].values():
        text["title"] = TITLE
        text["body"] = BODY + "\n\n" + text["body"]
    path = folder / "forged.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def flat(text: str) -> str:
    """Whitespace made single spaces: the text part wraps lines, HTML indents."""
    return " ".join(text.split())


def check_message(
    raw: bytes,
    address: str,
    *,
    name: bool = True,
    list_message: bool = True,
    test_copy: bool = False,
) -> None:
    """Every forged field shows literally, headers are the template's own, and the reader's
    address is in To only (a staff test copy's subject starts with "[TEST] ")."""
    msg: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[assignment]
    assert msg["Subject"] == ("[TEST] " if test_copy else "") + SUBJECT
    for header in ("To", "From", "Subject", "Date", "Message-ID"):
        assert len(msg.get_all(header) or []) == 1, header
    assert msg["Bcc"] is None and msg["Cc"] is None
    if list_message:
        assert len(msg.get_all("List-Unsubscribe") or []) == 1
        assert len(msg.get_all("List-Unsubscribe-Post") or []) == 1
    assert msg["To"].addresses[0].addr_spec == address
    text_part, html_part = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text_part is not None and html_part is not None
    text, html = flat(text_part.get_content()), flat(html_part.get_content())
    for shown in (text, html):
        for field in (TITLE, BODY, TOPIC):
            assert field in shown, field[:5]
        assert address not in shown
        assert "@@nl" not in shown.replace(FORGED, "")  # no placeholder of ours left over
        if name:
            assert NAME in shown
    head = raw.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ")  # unfolded
    assert not re.search(rb"@@nl[0-9a-f]{32}:", head.replace(FORGED.encode(), b""))

"""Messages: every ordered language set of the sample week, personalised per recipient."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.editions import import_edition_file
from newsletter.errors import ValidationError
from newsletter.languages import LANGUAGE_SETS
from newsletter.messages import MessageTemplate, Recipient, prepare_edition_messages

WEEK_RANGE = {
    "be": "27 студзеня – 2 лютага 2020",
    "ru": "27 января — 2 февраля 2020 г.",
    "en": "27 January – 2 February 2020",
}
TITLE = {"be": "Сітуацыя ў Беларусі", "ru": "Ситуация в Беларуси", "en": "Situation in Belarus"}
NAME = {"be": "Беларуская", "ru": "Русский", "en": "English"}

ALICE = Recipient(
    email="alice@example.org",
    name="Alice Liddell",
    unsubscribe_url="https://news.example.org/unsubscribe/ALICEtoken0123456789abcdefAAAA",
    message_id="<d1.2020-W05@news.example.org>",
)
BORIS = Recipient(
    email="boris@example.net",
    name="Барыс Каліноўскі",
    unsubscribe_url="https://news.example.org/unsubscribe/BORIStoken0123456789abcdefBBBB",
    message_id="<d2.2020-W05@news.example.org>",
)


@pytest.fixture(scope="module")
def templates(
    rendering_db: Session, render_settings: Settings, sample_path
) -> dict[tuple[str, ...], MessageTemplate]:  # type: ignore[no-untyped-def]
    edition = import_edition_file(rendering_db, sample_path)
    return prepare_edition_messages(rendering_db, render_settings, edition, LANGUAGE_SETS)


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[return-value]


def parts(raw: bytes) -> tuple[EmailMessage, str, str]:
    msg = parse(raw)
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return msg, text.get_content(), html.get_content()


def raw_header(raw: bytes, name: str) -> str:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    match = re.search(rf"^{name}: ([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head, re.MULTILINE)
    assert match, f"no {name} header"
    return match.group(1)


def test_fifteen_sets_are_prepared_once_each(templates: dict) -> None:  # type: ignore[type-arg]
    """All 15 ordered language sets are prepared, each exactly once."""
    assert list(templates) == list(LANGUAGE_SETS)
    assert len(templates) == 15


@pytest.mark.parametrize("langs", LANGUAGE_SETS, ids=[",".join(s) for s in LANGUAGE_SETS])
def test_each_set_renders_a_clean_message(
    templates: dict[tuple[str, ...], MessageTemplate], langs: tuple[str, ...]
) -> None:
    """Sections in the subscriber's order, exact subject, unsubscribe everywhere, no leaks."""
    template = templates[langs]
    primary = langs[0]
    raw_a, raw_b = template.render(ALICE), template.render(BORIS)
    msg, text, html = parts(raw_a)

    # Subject: primary language, digest and week, decoding back exactly.
    expected = f"{TITLE[primary]}: {WEEK_RANGE[primary]}"
    assert template.subject == expected and msg["Subject"] == expected
    assert raw_header(raw_a, "Subject").isascii()

    # Languages: <html lang> is the primary; sections carry their lang, in order.
    assert re.search(r'<html lang="(\w\w)"', html).group(1) == primary
    assert re.findall(r'<td lang="(\w\w)" dir="ltr"', html) == list(langs)
    assert [h for h in re.findall(r"<h1[^>]*>([^<]+)</h1>", html)] == [TITLE[primary]]
    if len(langs) > 1:
        index = next(line for line in text.splitlines() if all(NAME[x] in line for x in langs))
        assert sorted(langs, key=lambda x: index.index(NAME[x])) == list(langs)
        html_index = re.findall(r'<a href="[^"]+/(\w\w)/archive/2020-W05" lang="(\w\w)"', html)
        assert [lang for lang, _ in html_index] == list(langs)
        positions = [text.index(f"==== {NAME[lang]} · {TITLE[lang]}") for lang in langs]
        assert positions == sorted(positions)

    # The unsubscribe link in both parts and in a readable List-Unsubscribe.
    assert ALICE.unsubscribe_url in text
    assert f'href="{ALICE.unsubscribe_url}"' in html
    assert raw_header(raw_a, "List-Unsubscribe") == f"<{ALICE.unsubscribe_url}>"
    assert raw_header(raw_a, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] == "Situation in Belarus <digest.news.example.org>"
    assert msg["Message-ID"] == ALICE.message_id
    assert msg["To"].addresses[0].addr_spec == ALICE.email
    assert "news.example.org/" + primary + "/archive/2020-W05" in html  # view in browser

    # Inlined styles: most elements carry a style; the <style> left holds only @media.
    styled = len(re.findall(r"<(?:td|p|h1|h2|h3|a)\b[^>]*\bstyle=", html))
    assert styled >= 15
    for block in re.findall(r"<style[^>]*>(.*?)</style>", html, re.S):
        assert block.strip().startswith("@media")

    # Personal data of one recipient never appears in the other's message.
    _msg_b, text_b, html_b = parts(raw_b)
    for secret in (ALICE.email, "Alice", "ALICEtoken", ALICE.message_id):
        assert secret.encode() not in raw_b and secret not in text_b + html_b
    for secret in (BORIS.email, "BORIStoken", BORIS.message_id):
        assert secret.encode() not in raw_a
    assert "Барыс" in text_b and "Барыс" not in text + html
    assert parse(raw_b)["To"].addresses[0].display_name == "Барыс Каліноўскі"

    # Structure: CRLF only, short lines, text before HTML, SMTP form dot-stuffed.
    assert b"\n" not in raw_a.replace(b"\r\n", b"")
    assert max(len(line) for line in raw_a.split(b"\r\n")) <= 998
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    undated = re.compile(rb"^Date: [^\r]*\r\n", re.M)
    smtp = undated.sub(b"", template.render_smtp(ALICE))
    assert smtp == re.sub(rb"(?m)^\.", b"..", undated.sub(b"", raw_a))


def test_name_and_links_cannot_inject_headers(
    templates: dict[tuple[str, ...], MessageTemplate],
) -> None:
    """CR/LF in a name is flattened; in an address, Message-ID or link it is refused."""
    template = templates[("en",)]
    evil = Recipient(
        email="eve@example.org",
        name="Eve\r\nBcc: victim@example.org\r\n\r\n<b>x</b>",
        unsubscribe_url=ALICE.unsubscribe_url,
        message_id="<e@news.example.org>",
    )
    raw = template.render(evil)
    msg, _text, html = parts(raw)
    assert msg["Bcc"] is None and len(msg.get_all("To")) == 1
    assert "victim@example.org" in msg["To"]  # harmless text inside the quoted name
    assert msg["To"].addresses[0].addr_spec == "eve@example.org"
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    for field, value in (
        ("email", "eve@example.org\r\nBcc: victim@example.org"),
        ("email", "eve@example.org>, <victim@example.org"),
        ("message_id", "<x@y>\r\nBcc: victim@example.org"),
        ("unsubscribe_url", "https://news.example.org/u/x\r\nBcc: victim@example.org"),
        ("unsubscribe_url", 'https://news.example.org/u/x"><script>'),
    ):
        bad = Recipient(**{**evil.__dict__, "name": None, field: value})
        with pytest.raises(ValidationError):
            template.render(bad)


def test_subject_override_stays_one_line(
    rendering_db: Session, render_settings: Settings, sample_path
) -> None:  # type: ignore[no-untyped-def]
    """A per-language subject from the edition is used, and cannot break the header."""
    edition = import_edition_file(rendering_db, sample_path)
    edition.subjects = {"ru": "Спецвыпуск:\r\nBcc: victim@example.org дайджест: новости"}
    template = prepare_edition_messages(rendering_db, render_settings, edition, [("ru", "en")])[
        ("ru", "en")
    ]
    msg = parse(template.render(ALICE))
    assert msg["Subject"] == "Спецвыпуск: Bcc: victim@example.org дайджест: новости"
    assert msg["Bcc"] is None
    rendering_db.rollback()


def test_non_ascii_name_is_encoded_and_plain_name_greeted(
    templates: dict[tuple[str, ...], MessageTemplate],
) -> None:
    """A Cyrillic name is RFC 2047-encoded in To and greets the reader in both parts."""
    raw = templates[("be",)].render(BORIS)
    assert raw_header(raw, "To").startswith("=?utf-8?b?")
    _msg, text, html = parts(raw)
    assert "Добры дзень, Барыс Каліноўскі!" in text and "Добры дзень, Барыс Каліноўскі!" in html
    nameless = Recipient(**{**BORIS.__dict__, "name": None})
    _msg, text, _html = parts(templates[("be",)].render(nameless))
    assert "Добры дзень!" in text


@pytest.mark.parametrize(
    "tail",
    [
        "A" * 38,  # the whole link fits one QP line (75 characters)
        "A" * 39,  # one more: folded
        "A" * 150,  # three lines
        "A" * 38 + ".dot-starts-the-second-line",
        "A" * 20 + "?a=1&b='2'" + "B" * 60,  # '=' to encode, '&' and "'" to escape in HTML
    ],
)
def test_long_links_are_folded_into_valid_quoted_printable(
    templates: dict[tuple[str, ...], MessageTemplate], tail: str
) -> None:
    """However long the unsubscribe link, it arrives whole in both parts, on QP lines of at
    most 76 characters, and SMTP's copy (values put into pre-stuffed pieces) is the same
    message dot-stuffed."""
    from newsletter.transport import dot_stuff

    url = f"https://news.example.org/unsubscribe/{tail}"
    recipient = Recipient(**{**ALICE.__dict__, "unsubscribe_url": url})
    template = templates[("en",)]
    raw = template.render(recipient)
    _msg, text, html = parts(raw)
    assert url in text
    assert url.replace("&", "&amp;").replace("'", "&#x27;") in html
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert template.render_smtp(recipient) == dot_stuff(raw)

"""Rendering edge cases: fallback texts, the size guard, confirmation and DKIM."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.editions import import_edition_file
from newsletter.errors import EditionIncomplete
from newsletter.messages import Recipient, confirmation_message, prepare_edition_messages
from newsletter.rendering import HTML_SIZE_LIMIT

READER = Recipient(
    email="reader@example.org",
    name=None,
    unsubscribe_url="https://news.example.org/unsubscribe/READERtoken0123456789abcdefCCCC",
    message_id="<r1.2020-W05@news.example.org>",
)


def parse(raw: bytes) -> tuple[EmailMessage, str, str]:
    msg: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[assignment]
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return msg, text.get_content(), html.get_content()


def test_missing_text_needs_fallback_and_shows_a_note(
    rendering_db: Session,
    render_settings: Settings,
    sample_data: dict[str, Any],
    write_edition: Callable[..., Path],
) -> None:
    """Without a fallback a set needing a missing text is refused; with one, the text shows
    in the fallback language under a "not yet translated" note."""
    sample_data["week"] = "2020-W06"
    del sample_data["articles"][0]["translations"]["be"]
    edition = import_edition_file(rendering_db, write_edition(sample_data))
    with pytest.raises(EditionIncomplete, match="us-visit"):
        prepare_edition_messages(rendering_db, render_settings, edition, [("be", "en")])
    # Sets that need no missing language are fine without a fallback.
    assert prepare_edition_messages(rendering_db, render_settings, edition, [("ru",)])
    templates = prepare_edition_messages(
        rendering_db, render_settings, edition, [("be", "ru")], fallback_language="en"
    )
    _msg, text, html = parse(templates[("be", "ru")].render(READER))
    assert "Яшчэ не перакладзена на гэтую мову." in html
    assert "Яшчэ не перакладзена на гэтую мову." in text
    assert "Communication with the USA has reached new highs" in html
    assert re.search(r'<td class="article"[^>]*lang="en"', html)
    assert "Ещё не переведено" not in html  # the Russian text exists
    rendering_db.rollback()


def test_huge_edition_is_cut_with_read_more_links(
    rendering_db: Session,
    render_settings: Settings,
    sample_data: dict[str, Any],
    write_edition: Callable[..., Path],
) -> None:
    """A week too long for Gmail keeps first paragraphs with "read more" links to the archive."""
    sample_data["week"] = "2020-W07"
    base = sample_data["articles"][0]
    sample_data["articles"] = []
    for n in range(12):
        article = copy.deepcopy(base)
        article["slug"] = f"part-{n}"
        article["position"] = n
        sample_data["articles"].append(article)
    edition = import_edition_file(rendering_db, write_edition(sample_data))
    langs = ("be", "ru", "en")
    template = prepare_edition_messages(rendering_db, render_settings, edition, [langs])[langs]
    _msg, text, html = parse(template.render(READER))
    assert len(html.encode()) < HTML_SIZE_LIMIT + 2_000 < 102_000
    for lang, word in (("be", "Чытаць далей"), ("ru", "Читать далее"), ("en", "Read more")):
        link = f"https://news.example.org/{lang}/archive/2020-W07#part-11"
        assert f'href="{link}"' in html and link in text
        assert word in html
    assert "On February 1st, 2020, US Secretary of State" in html  # first paragraph kept
    assert "That said, the negotiations were held" not in html  # the last one cut
    assert READER.unsubscribe_url in text and READER.unsubscribe_url in html
    rendering_db.rollback()


def test_confirmation_message(render_settings: Settings) -> None:
    """The opt-in email: localised subject, the confirm link in both parts, no list headers,
    and no name (nothing a stranger typed goes to an unconfirmed address)."""
    raw = confirmation_message(
        render_settings,
        lang="be",
        email="new@example.org",
        confirm_url="https://news.example.org/confirm/CONFIRMtoken123",
        message_id="<c1@news.example.org>",
    )
    msg, text, html = parse(raw)
    assert msg["Subject"] == "Пацвердзіце падпіску"
    assert msg["To"].addresses[0].display_name == ""
    assert "https://news.example.org/confirm/CONFIRMtoken123" in text
    assert 'href="https://news.example.org/confirm/CONFIRMtoken123"' in html
    assert "Добры дзень!" in text and '<html lang="be"' in html
    assert msg["List-Unsubscribe"] is None and msg["Message-ID"] == "<c1@news.example.org>"
    assert "style=" in html


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test key")
def test_dkim_signature_covers_one_click_headers(
    rendering_db: Session, render_settings: Settings, sample_path: Path, tmp_path: Path
) -> None:
    """With a key configured every message is signed, List-Unsubscribe(-Post) included."""
    import dkim

    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    settings = replace(
        render_settings, dkim_key_file=key, dkim_selector="nl", dkim_domain="news.example.org"
    )
    edition = import_edition_file(rendering_db, sample_path)
    template = prepare_edition_messages(rendering_db, settings, edition, [("en",)])[("en",)]
    raw = template.render(READER)
    assert raw.startswith(b"DKIM-Signature:")
    signed = re.search(rb"h=([^;]+);", raw.split(b"\r\n\r\n", 1)[0]).group(1)
    names = [h.strip().lower() for h in re.sub(rb"\s", b"", signed).split(b":")]
    assert b"list-unsubscribe" in names and b"list-unsubscribe-post" in names

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"nl._domainkey.news.example.org."
        return record

    assert dkim.verify(raw, dnsfunc=dns)
    smtp = template.render_smtp(READER)
    assert smtp.startswith(b"DKIM-Signature:")
    unstuffed = re.sub(rb"(?m)^\.\.", b".", smtp)
    assert dkim.verify(unstuffed, dnsfunc=dns)
    rendering_db.rollback()


def test_inlining_with_parsed_rules_reused_matches_premailer(
    rendering_db: Session, render_settings: Settings, sample_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: reusing the stylesheet's parsed rules across variants changes no byte of any
    variant's HTML against plain premailer."""
    import premailer

    from newsletter import rendering
    from newsletter.languages import LANGUAGE_SETS

    edition = import_edition_file(rendering_db, sample_path)
    placeholders = {"unsubscribe_url": "U", "greeting_html": "G", "greeting_text": "T"}

    def render_all() -> list[Any]:
        return [
            rendering.render_edition(
                rendering_db, render_settings, edition, langs, placeholders=placeholders
            )
            for langs in LANGUAGE_SETS
        ]

    reused = render_all()
    monkeypatch.setattr(rendering, "_Premailer", premailer.Premailer)
    assert render_all() == reused
    rendering_db.rollback()

"""Test emails say so: "[TEST]" in the subject, a banner in the edition's language, and links
that lead to a page saying it was a test (never "subscription erased"), changing nothing."""

from __future__ import annotations

import email
import mailbox
import re
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from fastapi.testclient import TestClient

from newsletter.models import Subscriber, SubscriberStatus
from newsletter.runtime import Runtime

BANNER = {
    "be": "Гэта тэставы ліст: яго атрымалі толькі супрацоўнікі рэдакцыі",
    "ru": "Это тестовое письмо: его получили только сотрудники редакции",
    "en": "This is a test email: only staff received it",
}


def outbox(runtime: Runtime) -> list[EmailMessage]:
    folder = runtime.settings.outbox
    if not folder.exists():
        return []
    return [
        email.message_from_bytes(m.as_bytes(), policy=default_policy)  # type: ignore[misc]
        for m in mailbox.Maildir(folder, create=False)
    ]


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None
    return part.get_content()  # type: ignore[no-any-return]


def add_readers(runtime: Runtime, sets: tuple[str, ...]) -> None:
    with runtime.session() as session:
        for i, languages in enumerate(sets):
            session.add(
                Subscriber(
                    email=f"r{i}@example.org", languages=languages, status=SubscriberStatus.active
                )
            )


def test_test_email_is_marked_in_its_language(
    editor_client: TestClient, runtime: Runtime, edition: Any, h: Any
) -> None:
    """Each language set's test copy: subject starts "[TEST]", one banner line in the primary
    language at the top of the text and the HTML; the real send has neither."""
    add_readers(runtime, ("be", "ru,en", "en,be"))
    token = h.form_csrf(editor_client, "/admin/editions/2020-W05")
    page = editor_client.post(
        "/admin/editions/2020-W05/test", data={"csrf_token": token, "to": "editor@example.org"}
    )
    assert page.status_code == 200, page.text
    copies = outbox(runtime)
    assert len(copies) == 3
    for message in copies:
        subject = str(message["Subject"])
        primary = (
            message["Content-Language"].split(",")[0].strip()
            if message["Content-Language"]
            else None
        )
        html = body(message, "html")
        lang = primary or re.search(r'<html[^>]* lang="(\w+)"', html).group(1)  # type: ignore[union-attr]
        assert subject.startswith("[TEST] "), subject
        text = body(message, "plain")
        assert text.lstrip().startswith("*** " + BANNER[lang]), (lang, text[:200])
        assert html.count(BANNER[lang]) == 1
        others = [b for code, b in BANNER.items() if code != lang]
        assert not any(b in text or b in html for b in others)

    preview = editor_client.get("/admin/editions/2020-W05/preview/email?langs=be")
    assert BANNER["be"] not in preview.text  # the preview is what readers get
    assert "[TEST]" not in editor_client.get("/admin/editions/2020-W05/preview?langs=be").text


def test_links_of_a_test_email_say_it_was_a_test(
    editor_client: TestClient,
    client: TestClient,
    runtime: Runtime,
    edition: Any,
    h: Any,
    state: Any,
) -> None:
    """The test copy's unsubscribe link: a 200 page saying it was a test, in the reader's
    language; the one-click POST and every preference action change nobody."""
    add_readers(runtime, ("ru",))
    token = h.form_csrf(editor_client, "/admin/editions/2020-W05")
    editor_client.post(
        "/admin/editions/2020-W05/test", data={"csrf_token": token, "to": "editor@example.org"}
    )
    (message,) = outbox(runtime)
    links = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
    url = next(link for link in links if link.startswith("https://news.example.org/unsubscribe/"))
    path = url.removeprefix("https://news.example.org")
    assert path in body(message, "plain")
    # "View in browser" and "read more" lead to the same page, never to an archive that
    # may not exist yet.
    for part in ("plain", "html"):
        assert "/archive/" not in body(message, part)
    assert body(message, "html").count(path) >= 2

    page = client.get(path, headers={"Accept-Language": "ru"})
    assert page.status_code == 200
    assert "Эта ссылка из тестового письма" in page.text
    assert "ничего не изменилось" in page.text
    assert "больше не действует" not in page.text.lower()
    english = client.get(path + "?lang=en", headers={"Accept-Language": "en"})
    assert "This link came from a test email" in english.text

    one_click = client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200 and "з тэставага ліста" in one_click.text
    for action in ("/preferences", "/erase", "/export"):
        response = client.post(path + action, data={"languages": ["be"], "first": "be"})
        assert response.status_code in (200, 404, 405), (action, response.status_code)
    assert state.subscriber("r0@example.org") == ("active", "ru")

    # A forged token of the same shape is still refused, not taken for a test.
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert client.get(forged).status_code == 400

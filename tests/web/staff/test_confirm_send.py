"""'Send now' asks first: readers per language set, missing texts, then one confirmed POST."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from newsletter.models import Edition, EditionStatus, Subscriber, SubscriberStatus
from newsletter.runtime import Runtime


def add(runtime: Runtime, sets: dict[str, int], status: SubscriberStatus) -> None:
    with runtime.session() as session:
        for languages, count in sets.items():
            for i in range(count):
                tag = languages.replace(",", "-")
                session.add(
                    Subscriber(
                        email=f"{status.value}-{tag}-{i}@example.org",
                        languages=languages,
                        status=status,
                    )
                )


def status_of(runtime: Runtime) -> EditionStatus:
    with runtime.session() as session:
        return session.query(Edition).filter_by(week="2020-W05").one().status


def rows(html: str) -> dict[str, tuple[int, str]]:
    """The confirmation table: language set -> (readers, missing texts)."""
    body = html.split('<table id="sets"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [
            re.sub(r"<[^>]+>|\s+", " ", c).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        out[cells[0]] = (int(cells[1]), cells[2])
    return out


def test_send_now_shows_readers_per_language_set_before_sending(
    editor_client: TestClient, runtime: Runtime, edition: Any, h: Any
) -> None:
    """The confirmation page counts active readers per set; only its button starts the send."""
    add(runtime, {"be": 3, "ru,en": 2, "en,be,ru": 1}, SubscriberStatus.active)
    add(runtime, {"be": 4, "en": 5}, SubscriberStatus.unsubscribed)
    page = editor_client.get("/admin/editions/2020-W05/send")
    assert page.status_code == 200
    assert "6 readers will get it, in 3 language sets" in page.text
    assert rows(page.text) == {"be": (3, "none"), "ru,en": (2, "none"), "en,be,ru": (1, "none")}
    assert status_of(runtime) == EditionStatus.draft  # the GET changed nothing

    token = h.csrf_of(page.text)
    unconfirmed = editor_client.post("/admin/editions/2020-W05/send", data={"csrf_token": token})
    assert unconfirmed.status_code == 303
    assert unconfirmed.headers["location"] == "/admin/editions/2020-W05/send"
    assert status_of(runtime) == EditionStatus.draft

    assert 'name="confirmed" value="yes"' in page.text
    sent = editor_client.post(
        "/admin/editions/2020-W05/send", data={"csrf_token": token, "confirmed": "yes"}
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == "/admin/editions/2020-W05/progress"
    assert status_of(runtime) == EditionStatus.sending


def test_missing_texts_are_named_and_a_fallback_is_needed(
    editor_client: TestClient, runtime: Runtime, edition: Any
) -> None:
    """A missing English text is listed for the sets that read English; no send button until
    a fallback covers it, then the page says which language fills in."""
    slug = edition.slugs[0]
    with runtime.session() as session:
        row = session.query(Edition).filter_by(week="2020-W05").one()
        session.delete(next(a for a in row.articles if a.slug == slug).translation("en"))
    add(runtime, {"be": 2, "ru,en": 1}, SubscriberStatus.active)
    page = editor_client.get("/admin/editions/2020-W05/send")
    assert rows(page.text) == {"be": (2, "none"), "ru,en": (1, f"{slug} (en)")}
    assert (
        f'<li>en: <a href="/admin/editions/2020-W05/articles/{slug}/en">{slug}</a></li>'
        in page.text
    )
    assert "choose a fallback language" in page.text
    assert "Yes, send it now" not in page.text

    with_fallback = editor_client.get("/admin/editions/2020-W05/send?fallback=ru")
    assert "missing are shown in <strong>ru</strong>" in with_fallback.text
    assert "Yes, send it now" in with_fallback.text
    assert '<input type="hidden" name="fallback" value="ru">' in with_fallback.text


def test_confirmation_page_refuses_bad_input(
    editor_client: TestClient, runtime: Runtime, edition: Any
) -> None:
    """Nobody to send to: no button; a forged fallback or week is a clear 4xx page."""
    page = editor_client.get("/admin/editions/2020-W05/send")
    assert "Nobody would get it" in page.text and "Yes, send it now" not in page.text
    for query in ("?fallback=xx", "?fallback=%D0%B5n", "?fallback=" + "b" * 5000):
        response = editor_client.get("/admin/editions/2020-W05/send" + query)
        assert response.status_code == 422, query
        assert "Traceback" not in response.text
    assert editor_client.get("/admin/editions/2099-W60/send").status_code in (404, 422)
    assert editor_client.get("/admin/editions/2021-W01/send").status_code == 404

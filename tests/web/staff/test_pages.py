"""Staff pages: editions with completeness, the article editor, previews, statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from newsletter.models import (
    ArticleTranslation,
    Edition,
    EditionStatus,
    Event,
    EventSource,
    Subscriber,
    SubscriberStatus,
)
from newsletter.runtime import Runtime


def drop_translation(runtime: Runtime, slug: str, lang: str) -> None:
    from newsletter.editions import get_edition

    with runtime.session() as session:
        edition = get_edition(session, "2020-W05")
        article = next(a for a in edition.articles if a.slug == slug)
        session.delete(article.translation(lang))


def test_editions_list_shows_completeness(
    editor_client: TestClient, runtime: Runtime, edition: Any
) -> None:
    """The editions page lists the week with its per-language translation counts."""
    total = len(edition.slugs)
    slug = edition.slugs[0]
    drop_translation(runtime, slug, "en")
    page = editor_client.get("/admin/editions")
    assert page.status_code == 200
    assert "2020-W05" in page.text
    assert f">{total}/{total}<" in page.text  # be and ru complete
    assert f">{total - 1}/{total}<" in page.text  # en lacks one
    assert f"missing: {slug}" in page.text
    detail = editor_client.get("/admin/editions/2020-W05")
    assert detail.status_code == 200
    assert "missing: write it" in detail.text


def test_article_editor_saves_a_translation(
    editor_client: TestClient, runtime: Runtime, edition: Any, h: Any
) -> None:
    """An editor writes a missing English translation; it is stored and shown again."""
    slug = edition.slugs[0]
    drop_translation(runtime, slug, "en")
    path = f"/admin/editions/2020-W05/articles/{slug}/en"
    page = editor_client.get(path)
    assert page.status_code == 200
    response = editor_client.post(
        path,
        data={
            "csrf_token": h.csrf_of(page.text),
            "title": "  A <b>new</b> title ",
            "body": "First paragraph.\r\n\r\nSecond.",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == path + "?saved=1"
    with runtime.session() as session:
        stored = session.scalars(
            select(ArticleTranslation).where(ArticleTranslation.lang == "en")
        ).all()
        mine = next(t for t in stored if t.article.slug == slug)
        assert (mine.title, mine.body) == ("A <b>new</b> title", "First paragraph.\n\nSecond.")
    shown = editor_client.get(path + "?saved=1")
    assert "Saved." in shown.text
    assert "A &lt;b&gt;new&lt;/b&gt; title" in shown.text  # escaped, never raw HTML


def test_article_editor_refuses_bad_input(
    editor_client: TestClient, runtime: Runtime, edition: Any, h: Any
) -> None:
    """An empty title, an unknown article or language, or a running send: a clear 4xx."""
    slug = edition.slugs[0]
    token = h.form_csrf(editor_client)
    base = "/admin/editions/2020-W05/articles"
    cases = [
        (f"{base}/{slug}/en", {"title": " ", "body": "x"}, 422),
        (f"{base}/no-such-article/en", {"title": "t", "body": "x"}, 404),
        (f"{base}/{slug}/de", {"title": "t", "body": "x"}, 422),
        ("/admin/editions/2031-W01/articles/x/en", {"title": "t", "body": "x"}, 404),
        ("/admin/editions/not-a-week/articles/x/en", {"title": "t", "body": "x"}, 422),
    ]
    for path, data, status in cases:
        response = editor_client.post(path, data={"csrf_token": token, **data})
        assert response.status_code == status, (path, response.text)
    with runtime.session() as session:
        session.get(Edition, edition.id).status = EditionStatus.sending  # type: ignore[union-attr]
    response = editor_client.post(
        f"{base}/{slug}/en", data={"csrf_token": token, "title": "t", "body": "x"}
    )
    assert response.status_code == 409


def test_preview_shows_the_rendered_email(editor_client: TestClient, edition: Any) -> None:
    """The preview page frames the email of a language set; the frame's page is sandboxed."""
    pytest.importorskip("newsletter.messages")
    page = editor_client.get("/admin/editions/2020-W05/preview?langs=ru,en")
    assert page.status_code == 200
    assert "<iframe" in page.text and "sandbox" in page.text
    email = editor_client.get("/admin/editions/2020-W05/preview/email?langs=ru,en")
    assert email.status_code == 200
    assert 'lang="ru"' in email.text and 'lang="en"' in email.text
    assert "sandbox" in email.headers["content-security-policy"]
    assert email.headers["x-frame-options"] == "SAMEORIGIN"
    bad = editor_client.get("/admin/editions/2020-W05/preview?langs=be,be")
    assert bad.status_code == 422


def test_statistics_count_subscribers_and_editions(
    editor_client: TestClient, runtime: Runtime, edition: Any
) -> None:
    """Statistics show subscribers by status and language, and per-edition unsubscribes."""
    now = datetime.now(UTC)
    with runtime.session() as session:
        ed = session.get(Edition, edition.id)
        assert ed is not None
        ed.status, ed.started_at = EditionStatus.sent, now - timedelta(days=3)
        people = [
            ("a@example.org", "be", SubscriberStatus.active),
            ("b@example.org", "be,en", SubscriberStatus.active),
            ("c@example.org", "ru", SubscriberStatus.unsubscribed),
            ("d@example.org", "en", SubscriberStatus.pending),
        ]
        for email, langs, status in people:
            s = Subscriber(email=email, languages=langs, status=status)
            session.add(s)
            session.flush()
            session.add(
                Event(
                    subscriber_id=s.id,
                    kind="subscribed",
                    source=EventSource.form,
                    created_at=now - timedelta(days=20),
                )
            )
            if status != SubscriberStatus.pending:
                session.add(
                    Event(
                        subscriber_id=s.id,
                        kind="confirmed",
                        source=EventSource.link,
                        created_at=now - timedelta(days=2),
                    )
                )
            if status == SubscriberStatus.unsubscribed:
                session.add(
                    Event(
                        subscriber_id=s.id,
                        kind="unsubscribed",
                        source=EventSource.one_click,
                        edition_id=edition.id,
                        created_at=now - timedelta(days=1),
                    )
                )
    page = editor_client.get("/admin/statistics?weeks=5")
    assert page.status_code == 200
    assert page.text.count('<svg xmlns="http://www.w3.org/2000/svg" viewBox=') == 3  # the charts
    flat = page.text.replace("\n", "")

    def table(name: str) -> str:
        return flat.split(f'id="{name}"')[1].split("</table>")[0]

    # pending, active, unsubscribed, bounced, complained
    assert "<td>1</td><td>2</td><td>1</td><td>0</td><td>0</td>" in table("by-status")
    assert "<td>2</td><td>0</td><td>1</td>" in table("by-language")  # be, ru, en
    # 2020-W05 went out 3 days ago: 3 confirmations since, 1 unsubscribe from its links.
    assert (
        '<td>2020-W05</td><td class="text">sent</td>'
        "<td>0</td><td>0</td><td>0</td><td>3</td><td>1</td>" in (table("per-edition"))
    )


def test_subscriber_search_and_history(admin_client: TestClient, runtime: Runtime, h: Any) -> None:
    """An admin finds a subscriber by part of the address, reads their events, unsubscribes."""
    from newsletter.subscriptions import add_subscriber, confirm

    with runtime.session() as session:
        found = add_subscriber(session, "k", "Olga.K@example.org", "ru,en", name="Ольга")
        confirm(session, found.id)
        add_subscriber(session, "k", "someone@example.org", "be", confirmed=True)
        target = found.id
    page = admin_client.get("/admin/subscribers?q=OLGA")
    assert page.status_code == 200
    assert "olga.k@example.org" in page.text and "someone@example.org" not in page.text
    assert "1 found." in page.text
    assert "2 found." in admin_client.get("/admin/subscribers?q=example&status=active").text
    assert "0 found." in admin_client.get("/admin/subscribers?q=%25").text  # % is literal
    detail = admin_client.get(f"/admin/subscribers/{target}")
    assert detail.status_code == 200
    assert "Ольга" in detail.text
    assert "added" in detail.text and "confirmed" in detail.text
    response = admin_client.post(
        f"/admin/subscribers/{target}/unsubscribe", data={"csrf_token": h.csrf_of(detail.text)}
    )
    assert response.status_code == 303
    after = admin_client.get(f"/admin/subscribers/{target}").text
    assert "unsubscribed" in after and "staff" in after
    assert admin_client.get("/admin/subscribers/987654").status_code == 404


def test_admin_adds_a_staff_account(admin_client: TestClient, make_client: Any, h: Any) -> None:
    """An admin adds an editor on the staff page, who can then log in."""
    token = h.form_csrf(admin_client, "/admin/staff")
    response = admin_client.post(
        "/admin/staff",
        data={
            "csrf_token": token,
            "name": "newbie",
            "password": "long enough pw",
            "role": "editor",
        },
    )
    assert response.status_code == 303
    assert "newbie" in admin_client.get("/admin/staff").text
    taken = admin_client.post(
        "/admin/staff",
        data={"csrf_token": token, "name": "newbie", "password": "long enough pw", "role": "admin"},
    )
    assert taken.status_code == 409
    h.log_in(make_client(), "newbie", "long enough pw")


def test_staff_pages_say_when_the_scheduler_is_not_running(
    admin_client: TestClient, runtime: Runtime
) -> None:
    """Scenario: no tick has run (no beat, no serve without a broker): every staff page says
    the scheduler is not running; once ticks run, the warning goes."""
    from newsletter import dispatch

    page = admin_client.get("/admin/editions")
    assert page.status_code == 200
    assert "The scheduler is not running" in page.text and "no tick has ever run" in page.text
    with runtime.session() as session:
        dispatch.tick(session, runtime.settings, runtime.jobs)
    assert "The scheduler is not running" not in admin_client.get("/admin/editions").text

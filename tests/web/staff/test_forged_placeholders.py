"""Placeholder-shaped text typed by staff shows literally in the staff preview and on the
public archive page, never a 500 (issue 10, item 2)."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi.testclient import TestClient
from forgery_kit import BODY, FORGED, SUBJECT, TITLE, TOPIC, WEEK, flat, write_forged_edition
from sqlalchemy import update

from newsletter.editions import import_edition_file
from newsletter.models import Edition, EditionStatus
from newsletter.runtime import Runtime


def test_preview_and_archive_show_forged_placeholders_literally(
    editor_client: TestClient, runtime: Runtime, tmp_path: Path
) -> None:
    """Scenario: an edition full of placeholder-shaped text is previewed by staff and then
    published: every page answers 200 and shows the text as it was typed."""
    with runtime.session() as session:
        import_edition_file(session, write_forged_edition(tmp_path))
    for langs in ("be", "ru,en", "en,ru,be"):
        page = editor_client.get(f"/admin/editions/{WEEK}/preview?langs={langs}")
        assert page.status_code == 200
        assert html.escape(SUBJECT, quote=False) in flat(page.text)
        email = editor_client.get(f"/admin/editions/{WEEK}/preview/email?langs={langs}")
        assert email.status_code == 200
        for field in (TITLE, BODY, TOPIC):
            assert field in flat(email.text)
    with runtime.session() as session:
        session.execute(
            update(Edition).where(Edition.week == WEEK).values(status=EditionStatus.sent)
        )
    for lang in ("be", "ru", "en"):
        page = editor_client.get(f"/{lang}/archive/{WEEK}")
        assert page.status_code == 200
        shown = flat(page.text)
        for field in (TITLE, BODY, TOPIC):
            assert field in shown
        assert shown.count("@@nl") == 5 * shown.count(FORGED)  # nothing substituted

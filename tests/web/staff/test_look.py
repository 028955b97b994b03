"""The staff area's look: its own stylesheet, served locally, used by every page."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

PAGES = (
    "/admin/editions",
    "/admin/editions/2020-W05",
    "/admin/editions/2020-W05/preview?langs=be",
    "/admin/editions/2020-W05/progress",
    "/admin/statistics",
    "/admin/subscribers",
    "/admin/staff",
)


def test_every_staff_page_uses_the_local_stylesheet_and_nothing_remote(
    admin_client: TestClient, edition: Any
) -> None:
    """Each staff page links /admin/static/admin.css and loads nothing from another host."""
    for path in PAGES:
        page = admin_client.get(path)
        assert page.status_code == 200, path
        assert '<link rel="stylesheet" href="/admin/static/admin.css">' in page.text, path
        assert 'name="viewport" content="width=device-width' in page.text, path
        remote = re.findall(r'(?:src|href)="(?://|https?:)[^"]*"', page.text)
        assert remote == [], (path, remote)
    css = admin_client.get("/admin/static/admin.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "@import" not in css.text and "url(" not in css.text  # no fonts, no images fetched
    assert "@media (max-width: 40rem)" in css.text  # the phone layout exists


def test_the_current_section_is_marked_and_editors_see_only_theirs(
    admin_client: TestClient, editor_client: TestClient, edition: Any
) -> None:
    """The navigation marks the section being shown; an editor is not offered admin sections."""
    page = admin_client.get("/admin/statistics").text
    assert '<a href="/admin/statistics" aria-current="page">Statistics</a>' in page
    assert '<a href="/admin/subscribers">Subscribers</a>' in page
    editor_page = editor_client.get("/admin/editions/2020-W05").text
    assert '<a href="/admin/editions" aria-current="page">Editions</a>' in editor_page
    assert "/admin/subscribers" not in editor_page and "/admin/staff" not in editor_page


def test_the_stylesheet_is_refused_for_unknown_names(admin_client: TestClient) -> None:
    """Only the staff area's own files are served; a path trick gets a 404."""
    for name in ("..%2F..%2Fconfig.py", "admin.css.bak", "%2e%2e%2fsite.css", "ADMIN.CSS"):
        assert admin_client.get(f"/admin/static/{name}").status_code == 404, name

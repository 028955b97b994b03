"""The staff journey in a real browser: Debian's Chromium driven by Playwright.

Log in, upload a week, preview it, send a test, confirm a send and watch its progress; every
page is photographed at 375 px (a phone) and 1280 px (a laptop) into a folder a person can
open: $NEWSLETTER_SCREENSHOTS/<test name> when that is set, else the test's pytest tmp dir
(the path is printed). The app runs under `newsletter serve` with no broker: the send runs in
the server's threads, mail goes to the aiosmtpd fixture.
"""

from __future__ import annotations

import email
import os
import shutil
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from newsletter.paths import sample_data_dir

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("db_url", ["pg"], indirect=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
WIDTHS = (375, 1280)


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The folder this test's screenshots go to, named after the test."""
    root = os.environ.get("NEWSLETTER_SCREENSHOTS")
    name = request.node.name.replace("[", "-").replace("]", "")
    folder = Path(root) / name if root else tmp_path / "screenshots"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    print(f"screenshots: {folder}")
    return folder


def photograph(page: Any, folder: Path, name: str) -> None:
    """The page at each width, whole length; nothing may stick out sideways on a phone."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width} px is {overflow} px too wide"
    page.set_viewport_size({"width": 1280, "height": 800})


def wait_for_mail(
    handler: Any, address: str, count: int, timeout: float = 30
) -> list[EmailMessage]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = handler.by_recipient().get(address, [])
        if len(raw) >= count:
            return [email.message_from_bytes(r, policy=default_policy) for r in raw]
        time.sleep(0.2)
    raise AssertionError(f"{address} got {len(handler.by_recipient().get(address, []))} messages")


def test_staff_journey(  # type: ignore[no-untyped-def]
    browser, serve, smtp_server, free_tcp_port_factory, accounts, make_subscriber, shots, h
) -> None:
    """Scenario: an editor logs in, uploads a week, previews it, sends a test, confirms the
    send and watches it finish; each page is photographed at 375 and 1280 px."""
    smtp_url, handler = smtp_server
    port = free_tcp_port_factory()
    base = f"http://127.0.0.1:{port}"
    server = serve(port, NEWSLETTER_BASE_URL=base, NEWSLETTER_SMTP_URL=smtp_url)
    for address, langs in (
        ("a@example.org", "be"),
        ("b@example.org", "ru,en"),
        ("c@example.org", "en"),
    ):
        make_subscriber(address, langs, active=True)

    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()

    page.goto(server.url + "/admin/editions")
    assert page.url.startswith(base + "/admin/login")
    photograph(page, shots, "01-login")
    page.fill("input[name=name]", "erin")
    page.fill("input[name=password]", h.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    assert page.url == base + "/admin/editions"
    photograph(page, shots, "02-editions-empty")

    # Upload the sample week.
    page.get_by_role("link", name="Import a week (YAML)").click()
    page.wait_for_load_state()
    photograph(page, shots, "03-import")
    # A broken file first: the CLI's message, under the line it concerns; nothing imported.
    sample = (sample_data_dir() / "2020-W05.yaml").read_text(encoding="utf-8")
    broken = sample.replace("trend: improved", "trend: better", 1)
    page.set_input_files(
        "input[type=file]",
        files=[
            {"name": "2020-W05.yaml", "mimeType": "application/yaml", "buffer": broken.encode()}
        ],
    )
    page.get_by_role("button", name="Import").click()
    page.wait_for_load_state()
    assert "field 'trend': must be one of" in page.inner_text("#import-error")
    bad_line = broken.splitlines().index("    trend: better") + 1
    assert page.get_attribute(".line.bad", "id") == f"line-{bad_line}"
    assert "field 'trend'" in page.inner_text(".line-error")
    page.locator(".line.bad").scroll_into_view_if_needed()
    photograph(page, shots, "03b-import-error")

    page.set_input_files("input[type=file]", str(sample_data_dir() / "2020-W05.yaml"))
    page.get_by_role("button", name="Import").click()
    page.wait_for_load_state()
    assert page.url.startswith(base + "/admin/editions/2020-W05?added=")
    assert "Imported:" in page.inner_text("main")
    photograph(page, shots, "04-edition")

    page.select_option("select[name=langs]", "ru,en")
    page.get_by_role("button", name="Preview").click()
    page.wait_for_load_state()
    assert "Preview of 2020-W05 for ru,en" in page.inner_text("main")
    photograph(page, shots, "05-preview")

    page.goto(base + "/admin/editions/2020-W05")
    page.fill("input[name=to]", "editor@example.org")
    page.get_by_role("button", name="Send a test").click()
    page.wait_for_load_state()
    photograph(page, shots, "06-test-sent")
    copies = wait_for_mail(handler, "editor@example.org", 3)  # one per language set held
    assert all(str(m["Subject"]).startswith("[TEST] ") for m in copies)

    page.goto(base + "/admin/editions/2020-W05")
    page.get_by_role("button", name="Send now").click()
    page.wait_for_load_state()
    photograph(page, shots, "07-confirm")
    text = page.inner_text("main")
    assert "3 readers" in text
    page.get_by_role("button", name="Yes, send it now").click()
    page.wait_for_url("**/progress")
    page.wait_for_function(
        "() => document.querySelector('[data-field=status]').textContent === 'sent'",
        timeout=30_000,
    )
    assert page.inner_text("[data-field=sent]") == "3"
    photograph(page, shots, "08-progress")
    for address in ("a@example.org", "b@example.org", "c@example.org"):
        wait_for_mail(handler, address, 1)

    page.goto(base + "/admin/statistics")
    photograph(page, shots, "09-statistics")


def log_in(page: Any, base: str, name: str, password: str) -> None:
    page.goto(base + "/admin/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def test_admin_pages_at_both_widths(  # type: ignore[no-untyped-def]
    browser, serve, free_tcp_port_factory, accounts, make_subscriber, runtime, shots, h
) -> None:
    """Scenario: an admin opens subscribers, one subscriber, staff and tokens, and the send
    confirmation of a week with a missing text; each page fits at 375 and 1280 px."""
    from newsletter.editions import import_edition_file
    from newsletter.models import Edition

    port = free_tcp_port_factory()
    base = f"http://127.0.0.1:{port}"
    server = serve(port, NEWSLETTER_BASE_URL=base)
    for i, langs in enumerate(("be", "ru,en", "en,be,ru", "be,ru")):
        make_subscriber(f"reader.with.a.rather.long.address.{i}@example.org", langs, name="Алеся")
    with runtime.session() as session:
        import_edition_file(session, sample_data_dir() / "2020-W05.yaml")
        edition = session.query(Edition).filter_by(week="2020-W05").one()
        session.delete(edition.articles[0].translation("en"))

    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    log_in(page, server.url, "ada", h.PASSWORD)
    page.goto(base + "/admin/subscribers")
    assert "4 found" in page.inner_text("main")
    photograph(page, shots, "11-subscribers")
    page.get_by_role("link", name="reader.with.a.rather.long.address.0@example.org").click()
    page.wait_for_load_state()
    photograph(page, shots, "12-subscriber")
    page.goto(base + "/admin/staff")
    photograph(page, shots, "13-staff")

    page.goto(base + "/admin/editions/2020-W05")
    page.get_by_role("button", name="Send now").click()
    page.wait_for_load_state()
    text = page.inner_text("main")
    assert "4 readers will get it" in text and "choose a fallback language" in text
    assert page.get_by_role("button", name="Yes, send it now").count() == 0
    photograph(page, shots, "14-confirm-missing")
    page.select_option("select[name=fallback]", "ru")
    page.get_by_role("button", name="Check again").click()
    page.wait_for_load_state()
    assert page.get_by_role("button", name="Yes, send it now").count() == 1
    photograph(page, shots, "15-confirm-fallback")

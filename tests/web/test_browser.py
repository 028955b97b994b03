"""A reader's whole journey in a real browser: Debian's Chromium driven by Playwright.

No browser is downloaded: Playwright drives /usr/bin/chromium (`apt-get install chromium`).
The app runs under `newsletter serve` (real uvicorn) on a free port; mail goes to the
aiosmtpd fixture; jobs run in-process (no broker), in the server for the confirmation and in
this process for the edition's send.
"""

from __future__ import annotations

import email
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import httpx
import pytest

from newsletter.config import Settings
from newsletter.editions import import_edition_file
from newsletter.paths import sample_data_dir
from newsletter.runtime import Runtime

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("db_url", ["pg"], indirect=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        yield browser
        browser.close()


def wait_for_mail(handler, address: str, count: int, timeout: float = 30) -> list[EmailMessage]:  # type: ignore[no-untyped-def]
    """The messages an address has received, once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = handler.by_recipient().get(address, [])
        if len(raw) >= count:
            return [email.message_from_bytes(r, policy=default_policy) for r in raw]
        time.sleep(0.2)
    raise AssertionError(f"{address} got {len(handler.by_recipient().get(address, []))} messages")


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def test_subscribe_confirm_receive_unsubscribe(  # type: ignore[no-untyped-def]
    browser, serve, smtp_server, free_tcp_port_factory, settings: Settings, engine, state
) -> None:
    """Scenario: a reader subscribes in Russian, confirms from the email, receives the edition
    and unsubscribes through its link; a second reader leaves by a one-click POST."""
    smtp_url, handler = smtp_server
    port = free_tcp_port_factory()
    base = f"http://127.0.0.1:{port}"
    server = serve(port, NEWSLETTER_BASE_URL=base, NEWSLETTER_SMTP_URL=smtp_url)
    runtime = Runtime(replace(settings, base_url=base, smtp_url=smtp_url), _engine=engine)

    context = browser.new_context(locale="ru-RU")
    page = context.new_page()

    # Subscribe through the form: / sends a Russian browser to /ru/.
    page.goto(server.url + "/")
    assert page.url == base + "/ru/"
    page.fill("#email", "reader@example.org")
    page.fill("#name", "Алеся")
    page.check("input[name=languages][value=en]")
    page.select_option("#first", "ru")
    page.get_by_role("button", name="Подписаться").click()
    page.wait_for_load_state()
    assert "Почти готово" in page.inner_text("main")

    # The confirmation email: Russian, with a link that opens a page with a button.
    (confirmation,) = wait_for_mail(handler, "reader@example.org", 1)
    match = re.search(re.escape(base) + r"/confirm/[A-Za-z0-9_-]+", text_of(confirmation))
    assert match, text_of(confirmation)
    page.goto(match.group(0))
    assert state.subscriber("reader@example.org") == ("pending", "ru,en")  # the GET did nothing
    page.get_by_role("button", name="Подтвердить подписку").click()
    page.wait_for_load_state()
    assert "Вы успешно подписались" in page.inner_text("main")
    assert state.subscriber("reader@example.org") == ("active", "ru,en")

    # A second reader, confirmed by staff; then the week's edition goes out to both.
    from newsletter import subscriptions
    from newsletter.dispatch import start_send

    with runtime.session() as s:
        subscriptions.add_subscriber(
            s, settings.secret_key, "second@example.org", "en", confirmed=True
        )
        import_edition_file(s, sample_data_dir() / "2020-W05.yaml")
    with runtime.session() as s:
        start_send(s, runtime.settings, "2020-W05", jobs=runtime.jobs)
    edition = wait_for_mail(handler, "reader@example.org", 2)[1]
    assert "Ситуация в Беларуси" in str(edition["Subject"])
    links = re.findall(r"<([^>]+)>", str(edition["List-Unsubscribe"]))
    unsubscribe_url = next(link for link in links if link.startswith(base))

    # Unsubscribe through the email's link: the preference page, then the button.
    page.goto(unsubscribe_url)
    assert "Настроить подписку" in page.inner_text("main")
    assert state.subscriber("reader@example.org")[0] == "active"
    page.get_by_role("button", name="Отписаться").click()
    page.wait_for_load_state()
    assert "Вы отписались" in page.inner_text("main")
    assert state.subscriber("reader@example.org")[0] == "unsubscribed"
    assert state.events("reader@example.org")[-1][:2] == ("unsubscribed", "link")
    context.close()

    # The second reader's mailbox provider uses RFC 8058 one-click: a bare POST. (The
    # List-Unsubscribe-Post header itself is only written for https links; this server is http.)
    second = wait_for_mail(handler, "second@example.org", 1)[-1]
    links = re.findall(r"<([^>]+)>", str(second["List-Unsubscribe"]))
    one_click = next(link for link in links if link.startswith(base))
    response = httpx.post(
        one_click,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert response.status_code == 200
    assert state.subscriber("second@example.org")[0] == "unsubscribed"
    assert state.events("second@example.org")[-1][:2] == ("unsubscribed", "one-click")

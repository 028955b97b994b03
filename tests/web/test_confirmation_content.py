"""The confirmation email carries nothing a stranger wrote (issue 10, item 4): no name goes to
an unconfirmed address, and the form takes only short names made of letters."""

from __future__ import annotations

import email
import re
from email import policy

import pytest
from fastapi.testclient import TestClient

from newsletter import subscriptions
from newsletter.jobs import run_job
from newsletter.runtime import Runtime

PHISHING = "your account is locked, restore it at https://restore.example.net/login"

HOSTILE_NAMES = [
    PHISHING,
    "Restore at restore.example.net",
    "write to help@restore.example.net",
    "restore．example．net",  # full-width full stops
    "restore｡example｡net",  # halfwidth ideographic full stops
    "help＠restore",  # full-width @
    "restoreꓸexample",  # a Lisu tone letter that looks like a full stop
    "Ann\u202eten.evil",  # a right-to-left override
    "Ann\u200bBcc",  # a zero-width space
    "Ann\x00Bcc",
    "call 555 0100",
    "A" * 65,
]
GOOD_NAMES = ["Алесь", "Мар'яна", "Марʼяна", "Jean-Luc O’Neill", "J. R. R. Tolkien", "李小龙"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_the_form_refuses_names_with_links_addresses_or_controls(
    client: TestClient, state, name: str
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a stranger puts a link, an address, a look-alike spelling of one, a control
    character or a long text in the name field: the form asks again, nothing is stored or sent."""
    response = client.post(
        "/en/subscribe",
        data={"email": "victim@example.org", "name": name, "languages": ["en"]},
    )
    assert response.status_code == 422
    assert "Please write only your name" in response.text or "too long" in response.text
    assert state.subscriber("victim@example.org") is None
    assert state.outbox("victim@example.org") == []


def test_the_form_takes_real_names_and_the_email_carries_none(
    client: TestClient, state, runtime: Runtime
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: readers subscribe with real names in several scripts: stored as typed, and
    the confirmation each gets greets without a name and shows no name in To."""
    for n, name in enumerate(GOOD_NAMES):
        address = f"reader{n}@example.org"
        response = client.post(
            "/be/subscribe", data={"email": address, "name": name, "languages": ["be"]}
        )
        assert response.status_code == 200, name
        with runtime.session() as s:
            assert subscriptions.get_by_email(s, address).name == name  # type: ignore[union-attr]
        [raw] = state.outbox(address)
        message = email.message_from_string(raw, policy=policy.default)
        assert message["To"].addresses[0].display_name == ""
        assert "Добры дзень!" in message.get_body(("plain",)).get_content()
        for part in message.walk():
            if not part.is_multipart():
                assert name not in part.get_content()


def test_a_name_set_by_staff_stays_out_of_the_confirmation(runtime: Runtime, state) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a pending reader whose name says "your account is locked, restore it at …"
    (staff may type anything) gets a confirmation with only our words and our link."""
    with runtime.session() as s:
        reader = subscriptions.add_subscriber(
            s, runtime.settings.secret_key, "pending@example.org", "en", name=PHISHING
        )
        s.flush()
        reader_id = reader.id
    run_job(runtime, "send_confirmation", {"subscriber_id": reader_id})
    [raw] = state.outbox("pending@example.org")
    message = email.message_from_string(raw, policy=policy.default)
    assert message["To"].addresses[0].display_name == ""
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for shown in (text, html, str(message["Subject"])):
        assert "locked" not in shown and "restore" not in shown
    links = re.findall(r"https?://[^\s\"<>]+", text + html)
    assert links and all(link.startswith(runtime.settings.base_url + "/") for link in links)

"""The subscribe form: every language, bad input, honeypot, rate limits, no enumeration."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from newsletter.web.ratelimit import Limit

HEADINGS = {
    "be": "Падпішыцеся на нашу рассылку",
    "ru": "Подпишитесь на нашу рассылку",
    "en": "Subscribe to our newsletter",
}
CHECK_INBOX = {
    "be": "Амаль гатова",
    "ru": "Почти готово",
    "en": "Almost done",
}


REDIRECTS = [(None, "/be/"), ("ru-RU,ru;q=0.9", "/ru/"), ("en-US,en;q=0.9", "/en/"), ("de", "/be/")]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # plain HTTP
def test_root_redirects_by_accept_language(client: TestClient) -> None:
    """Scenario: / sends the visitor to the form in their browser's language, default be."""
    for accept, target in REDIRECTS:
        headers = {"Accept-Language": accept} if accept else {}
        response = client.get("/", headers=headers)
        assert response.status_code == 302
        assert response.headers["location"] == target


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # plain HTTP
def test_subscribe_page_in_each_language(client: TestClient) -> None:
    """Scenario: the form speaks the page's language, preselects it and offers the others."""
    for lang in ("be", "ru", "en"):
        check_subscribe_page(client, lang)


def check_subscribe_page(client: TestClient, lang: str) -> None:
    response = client.get(f"/{lang}/")
    assert response.status_code == 200
    page = response.text
    assert f'<html lang="{lang}">' in page
    assert HEADINGS[lang] in page
    assert f'value="{lang}" checked' in page
    assert f'<option value="{lang}" lang="{lang}" selected>' in page
    assert 'name="website"' in page  # the honeypot
    for other in {"be", "ru", "en"} - {lang}:
        assert f'href="/{other}/"' in page  # the language switch


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # plain HTTP
def test_unknown_language_is_404(client: TestClient) -> None:
    """Scenario: /de/ is not a page; the 404 speaks the browser's language."""
    response = client.get("/de/", headers={"Accept-Language": "ru"})
    assert response.status_code == 404
    assert 'lang="ru"' in response.text
    assert "Страница не найдена" in response.text


def test_subscribe_sends_a_confirmation(client: TestClient, state) -> None:
    """Scenario: a new reader subscribes; they are pending and get the confirmation email."""
    for lang in ("be", "ru", "en"):
        address = f"reader-{lang}@example.org"
        response = client.post(
            f"/{lang}/subscribe",
            data={"email": address.title(), "name": "Ala", "languages": [lang], "first": lang},
        )
        assert response.status_code == 200
        assert CHECK_INBOX[lang] in response.text
        assert state.subscriber(address) == ("pending", lang)
        messages = state.outbox(address)
        assert len(messages) == 1
        assert re.search(r"/confirm/[A-Za-z0-9_-]+", messages[0])


def test_languages_in_chosen_order(client: TestClient, state) -> None:
    """Scenario: be and en ticked, en chosen as first: the subscriber holds en,be."""
    client.post(
        "/be/subscribe",
        data={"email": "order@example.org", "languages": ["be", "en"], "first": "en"},
    )
    assert state.subscriber("order@example.org") == ("pending", "en,be")


def test_known_address_gets_the_same_answer(client: TestClient, state, make_subscriber) -> None:  # type: ignore[no-untyped-def]
    """Scenario: an active address subscribes again: same page, nothing changes but a note in
    the audit trail (written so that the answer takes as long), no email."""
    make_subscriber("known@example.org", "ru,en")
    before = state.events("known@example.org")
    fresh = client.post("/en/subscribe", data={"email": "new@example.org", "languages": ["en"]})
    known = client.post("/en/subscribe", data={"email": "known@example.org", "languages": ["en"]})
    assert known.status_code == fresh.status_code == 200
    assert known.text == fresh.text
    assert state.subscriber("known@example.org") == ("active", "ru,en")
    assert state.events("known@example.org") == [*before, ("already_active", "form", None)]
    assert state.outbox("known@example.org") == []


def test_erased_address_gets_the_same_answer(client: TestClient, state, make_subscriber) -> None:  # type: ignore[no-untyped-def]
    """Scenario: an erased (suppressed) address is refused silently, with the usual page."""
    from newsletter import subscriptions

    make_subscriber("gone@example.org")
    with state.runtime.session() as s:
        subscriptions.forget(s, state.runtime.settings.secret_key, "gone@example.org")
    response = client.post("/en/subscribe", data={"email": "gone@example.org", "languages": ["en"]})
    assert response.status_code == 200
    assert CHECK_INBOX["en"] in response.text
    assert state.subscriber("gone@example.org") is None


def test_honeypot_subscribes_nobody(client: TestClient, state) -> None:
    """Scenario: a bot fills the hidden field: it sees success, nothing is stored or sent."""
    response = client.post(
        "/en/subscribe",
        data={"email": "bot@example.org", "languages": ["en"], "website": "http://spam"},
    )
    assert response.status_code == 200
    assert CHECK_INBOX["en"] in response.text
    assert state.subscriber("bot@example.org") is None
    assert state.outbox("bot@example.org") == []


BAD_INPUT = [
    ({"email": "a@example.org"}, "Выберыце хаця б адну мову."),
    ({"email": "", "languages": ["be"]}, "Увядзіце правільны адрас электроннай пошты."),
    ({"email": "not-an-address", "languages": ["be"]}, "Увядзіце правільны адрас"),
    ({"email": "a@b", "languages": ["be"]}, "Увядзіце правільны адрас"),
    ({"email": "a@example.org", "languages": ["xx"]}, "Выберыце хаця б адну мову."),
    ({"email": "a@example.org", "languages": ["be"], "name": "x" * 201}, "Імя занадта доўгае."),
    ({"email": "x" * 330 + "@example.org", "languages": ["be"]}, "Увядзіце правільны адрас"),
    ({}, "Увядзіце правільны адрас"),
]


def test_bad_input_shows_the_form_again(client: TestClient, state) -> None:
    """Scenario: bad input gets the form back (422) with a message in the page's language."""
    for data, message in BAD_INPUT:
        response = client.post("/be/subscribe", data=data)
        assert response.status_code == 422, data
        assert message in response.text
        assert '<form class="card" method="post" action="/be/subscribe">' in response.text
    assert state.events() == []


def test_form_keeps_input_escaped(client: TestClient) -> None:
    """Scenario: markup typed into the form comes back as text, never as markup."""
    response = client.post(
        "/en/subscribe",
        data={"email": '"><script>alert(1)</script>', "name": "<b>x</b>", "languages": ["en"]},
    )
    assert response.status_code == 422
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text
    assert "<b>x</b>" not in response.text


def test_rate_limit_per_address(client: TestClient, state, app: FastAPI) -> None:
    """Scenario: one address submitted again and again is refused with 429 after the limit."""
    app.state.subscribe_limits.per_address = Limit(2, 3600)
    data = {"email": "flood@example.org", "languages": ["ru"]}
    codes = [client.post("/ru/subscribe", data=data).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    last = client.post("/ru/subscribe", data=data)
    assert "Слишком много попыток" in last.text
    other = client.post("/ru/subscribe", data={"email": "ok@example.org", "languages": ["ru"]})
    assert other.status_code == 200


def test_rate_limit_per_ip(client: TestClient, app: FastAPI) -> None:
    """Scenario: one client trying many addresses is stopped after the per-IP limit."""
    app.state.subscribe_limits.per_ip = Limit(3, 3600)
    codes = [
        client.post(
            "/en/subscribe", data={"email": f"u{i}@example.org", "languages": ["en"]}
        ).status_code
        for i in range(4)
    ]
    assert codes == [200, 200, 200, 429]

"""The links in our emails: confirm and unsubscribe, preferences, export and erase."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from newsletter.tokens import TokenPurpose, TokenSigner

EDITION_ID = 7  # the edition an unsubscribe link was sent with (no row needed: events keep ids)


def confirm_link(signer: TokenSigner, subscriber_id: int, **kw) -> str:  # type: ignore[no-untyped-def]
    return "/confirm/" + signer.make(TokenPurpose.confirm, subscriber_id, **kw)


def unsubscribe_link(signer: TokenSigner, subscriber_id: int) -> str:
    return "/unsubscribe/" + signer.make(TokenPurpose.unsubscribe, subscriber_id, EDITION_ID)


# --- confirm -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "button"),
    [
        ("be", "Пацвердзіць падпіску"),
        ("ru", "Подтвердить подписку"),
        ("en", "Confirm subscription"),
    ],
)
def test_confirm_get_shows_a_button_and_changes_nothing(
    client: TestClient, state, signer: TokenSigner, make_subscriber, lang: str, button: str
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a link scanner (or the reader) opens the link: a button, still pending."""
    sid = make_subscriber("p@example.org", f"{lang},en" if lang != "en" else "en", active=False)
    response = client.get(confirm_link(signer, sid))
    assert response.status_code == 200
    assert f'<html lang="{lang}">' in response.text
    assert button in response.text
    assert 'method="post"' in response.text
    assert response.headers["cache-control"] == "no-store"
    assert state.subscriber("p@example.org")[0] == "pending"


def test_confirm_post_activates(
    client: TestClient, state, signer: TokenSigner, make_subscriber
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the reader presses the button: active, an event says so; twice is harmless."""
    sid = make_subscriber("p@example.org", "ru", active=False)
    link = confirm_link(signer, sid)
    response = client.post(link)
    assert response.status_code == 200
    assert "Вы успешно подписались" in response.text
    assert state.subscriber("p@example.org") == ("active", "ru")
    assert ("confirmed", "link", None) in state.events("p@example.org")
    again = client.post(link)
    assert again.status_code == 200
    assert [e[0] for e in state.events("p@example.org")].count("confirmed") == 1
    assert "Вы успешно подписались" in client.get(link).text


def test_confirm_page_language_switch(
    client: TestClient, signer: TokenSigner, make_subscriber
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a be reader switches the confirm page to English with the language switch."""
    sid = make_subscriber("p@example.org", "be", active=False)
    link = confirm_link(signer, sid)
    page = client.get(link).text
    assert f'href="{link}?lang=en"' in page
    english = client.get(link + "?lang=en")
    assert '<html lang="en">' in english.text
    assert f'action="{link}?lang=en"' in english.text


BAD_TOKENS = ["nonsense", "AAAA", "x" * 400, "%00", "..%2F..%2Fetc"]


INVALID = {"be": "спасылка несапраўдная", "ru": "ссылка недействительна", "en": "not valid"}


def test_bad_confirm_tokens(client: TestClient, state) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a mangled confirm link gets a clear 4xx page in the browser's language."""
    for (accept, title), token in itertools.product(INVALID.items(), BAD_TOKENS):
        for method in ("GET", "POST"):
            response = client.request(
                method, f"/confirm/{token}", headers={"Accept-Language": accept}
            )
            assert 400 <= response.status_code < 500, (token, method)
            assert f'lang="{accept}"' in response.text
            if response.status_code == 400:
                assert title in response.text
    assert state.events() == []


def test_tampered_expired_and_foreign_confirm_tokens(
    client: TestClient, state, signer: TokenSigner, make_subscriber
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: an altered, an old, an unsubscribe and an unknown-id token never confirm."""
    sid = make_subscriber("p@example.org", "en", active=False)
    good = signer.make(TokenPurpose.confirm, sid)
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    old = signer.make(TokenPurpose.confirm, sid, now=datetime.now(UTC) - timedelta(days=8))
    foreign = signer.make(TokenPurpose.unsubscribe, sid, EDITION_ID)
    unknown = signer.make(TokenPurpose.confirm, sid + 1000)
    other_key = TokenSigner("another-secret").make(TokenPurpose.confirm, sid, salt=1)
    expected = {tampered: 400, old: 410, foreign: 400, unknown: 410, other_key: 400}
    for token, code in expected.items():
        for method in ("GET", "POST"):
            response = client.request(method, f"/confirm/{token}?lang=en")
            assert response.status_code == code, (token, method)
    assert "This link has expired" in client.get(f"/confirm/{old}?lang=en").text
    assert state.subscriber("p@example.org") == ("pending", "en")


def test_confirm_link_after_unsubscribing_is_refused(
    client: TestClient, state, signer: TokenSigner, make_subscriber
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: an old confirm link does not quietly bring back someone who left."""
    sid = make_subscriber("p@example.org", "en", active=True)
    client.post(unsubscribe_link(signer, sid))
    response = client.post(confirm_link(signer, sid))
    assert response.status_code == 409
    assert state.subscriber("p@example.org")[0] == "unsubscribed"


# --- unsubscribe and preferences -----------------------------------------------------------


@pytest.mark.parametrize(
    ("langs", "heading"),
    [("be,ru", "Наладзіць падпіску"), ("ru", "Настроить подписку"), ("en,be", "Manage your")],
)
def test_preference_page_changes_nothing(
    client: TestClient, state, signer: TokenSigner, make_subscriber, langs: str, heading: str
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the List-Unsubscribe URL opened in a browser shows preferences; still active."""
    sid = make_subscriber("r@example.org", langs)
    response = client.get(unsubscribe_link(signer, sid))
    assert response.status_code == 200
    assert f'<html lang="{langs[:2]}">' in response.text
    assert heading in response.text
    assert "r@example.org" in response.text
    for action in ("/preferences", "/export", "/erase"):
        assert action in response.text
    assert state.subscriber("r@example.org") == ("active", langs)


def test_unsubscribe_button(
    client: TestClient, state, signer: TokenSigner, make_subscriber
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the reader presses Unsubscribe: at once, the event names the edition."""
    sid = make_subscriber("r@example.org", "be")
    link = unsubscribe_link(signer, sid)
    response = client.post(link + "?lang=be")
    assert response.status_code == 200
    assert "Вы адпісаліся" in response.text
    assert state.subscriber("r@example.org")[0] == "unsubscribed"
    assert state.events("r@example.org")[-1] == ("unsubscribed", "link", EDITION_ID)
    assert client.post(link).status_code == 200  # twice is harmless
    assert [e[0] for e in state.events("r@example.org")].count("unsubscribed") == 1


def test_one_click_unsubscribe(state, signer: TokenSigner, make_subscriber, app) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a mailbox provider POSTs List-Unsubscribe=One-Click: no cookie, no token, 200."""
    sid = make_subscriber("r@example.org", "ru,en")
    with TestClient(app, base_url="https://news.example.org") as provider:
        response = provider.post(
            unsubscribe_link(signer, sid),
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert state.subscriber("r@example.org")[0] == "unsubscribed"
    assert state.events("r@example.org")[-1] == ("unsubscribed", "one-click", EDITION_ID)


def test_one_click_as_multipart(
    client: TestClient, state, signer: TokenSigner, make_subscriber
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a provider sends the one-click body as multipart/form-data: still one-click."""
    sid = make_subscriber("r@example.org", "en")
    response = client.post(
        unsubscribe_link(signer, sid), files={"List-Unsubscribe": (None, "One-Click")}
    )
    assert response.status_code == 200
    assert state.events("r@example.org")[-1] == ("unsubscribed", "one-click", EDITION_ID)


def test_unsubscribe_link_of_nobody_is_no_longer_valid(
    client: TestClient, signer: TokenSigner
) -> None:
    """Scenario: a genuine link naming an id nobody holds acts on nobody: a 410 page."""
    token_link = unsubscribe_link(signer, 424242)
    response = client.post(token_link, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 410
    page = client.get(token_link + "?lang=en")
    assert page.status_code == 410
    assert "This link is no longer valid" in page.text


def test_change_languages(client: TestClient, state, signer: TokenSigner, make_subscriber) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the reader ticks ru and en, en first: saved, shown, the event recorded."""
    sid = make_subscriber("r@example.org", "be")
    link = unsubscribe_link(signer, sid)
    response = client.post(
        link + "/preferences?lang=be", data={"languages": ["ru", "en"], "first": "en"}
    )
    assert response.status_code == 303
    assert state.subscriber("r@example.org") == ("active", "en,ru")
    assert state.events("r@example.org")[-1] == ("languages_changed", "link", EDITION_ID)
    page = client.get(response.headers["location"])
    assert '<html lang="be">' in page.text
    assert "Налады захаваныя." in page.text


def test_change_languages_needs_one(
    client: TestClient, state, signer: TokenSigner, make_subscriber
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: unticking every language is refused with a message; nothing changes."""
    sid = make_subscriber("r@example.org", "ru")
    response = client.post(unsubscribe_link(signer, sid) + "/preferences", data={"first": "ru"})
    assert response.status_code == 422
    assert "Выберите хотя бы один язык." in response.text
    assert state.subscriber("r@example.org") == ("active", "ru")


def test_export_my_data(client: TestClient, state, signer: TokenSigner, make_subscriber) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the reader downloads everything held about them as JSON; the download is noted."""
    sid = make_subscriber("r@example.org", "be,en", name="Алесь")
    response = client.post(unsubscribe_link(signer, sid) + "/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "attachment" in response.headers["content-disposition"]
    data = json.loads(response.content)
    assert data["email"] == "r@example.org"
    assert data["name"] == "Алесь"
    assert data["languages"] == ["be", "en"]
    assert state.events("r@example.org")[-1] == ("exported", "link", EDITION_ID)


def test_erase_my_data(client: TestClient, state, signer: TokenSigner, make_subscriber) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the reader erases their data: asked to tick the box, then gone for good."""
    sid = make_subscriber("r@example.org", "en")
    link = unsubscribe_link(signer, sid)
    refused = client.post(link + "/erase")
    assert refused.status_code == 422
    assert state.subscriber("r@example.org") is not None
    response = client.post(link + "/erase", data={"confirm": "yes"})
    assert response.status_code == 200
    assert "Your data has been erased" in response.text
    assert state.subscriber("r@example.org") is None
    assert state.events() == [("forgotten", "link", EDITION_ID)]  # and nothing about whom
    assert client.get(link).status_code == 410
    # The address cannot be subscribed again by someone else.
    client.post("/en/subscribe", data={"email": "r@example.org", "languages": ["en"]})
    assert state.subscriber("r@example.org") is None


@pytest.mark.parametrize("suffix", ["", "/preferences", "/export", "/erase"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_unsubscribe_tokens(
    client: TestClient, state, signer: TokenSigner, make_subscriber, suffix: str, method: str
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: altered or foreign unsubscribe links change nothing and get a 4xx page."""
    sid = make_subscriber("r@example.org", "ru")
    good = signer.make(TokenPurpose.unsubscribe, sid, EDITION_ID)
    for token in (good[:-3] + "abc", signer.make(TokenPurpose.confirm, sid), "junk", "A" * 40):
        response = client.request(
            method, f"/unsubscribe/{token}{suffix}", headers={"Accept-Language": "ru"}
        )
        assert 400 <= response.status_code < 500, (token, response.status_code)
        assert 'lang="ru"' in response.text
    assert state.subscriber("r@example.org") == ("active", "ru")


def test_no_get_changes_state(
    client: TestClient, state, signer: TokenSigner, make_subscriber
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a link scanner GETs every URL, even the POST-only ones: nothing changes."""
    pending = make_subscriber("p@example.org", "be", active=False)
    active = make_subscriber("a@example.org", "ru,en")
    before = state.snapshot()
    urls = [
        confirm_link(signer, pending),
        unsubscribe_link(signer, active),
        unsubscribe_link(signer, active) + "/preferences?languages=be&first=be",
        unsubscribe_link(signer, active) + "/export",
        unsubscribe_link(signer, active) + "/erase?confirm=yes",
        "/be/subscribe?email=x@example.org&languages=be",
        "/",
        "/be/",
        "/en/archive/",
    ]
    for url in urls:
        assert client.get(url).status_code < 500
        assert client.head(url).status_code < 500
    assert state.snapshot() == before


def test_preference_page_escapes_the_name(
    client: TestClient, signer: TokenSigner, make_subscriber
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a name with markup is shown as text on the preference page."""
    sid = make_subscriber("x@example.org", "en", name='<img src=x onerror="alert(1)">')
    page = client.get(unsubscribe_link(signer, sid)).text
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page


def test_unsubscribe_post_with_any_body(
    client: TestClient, state, signer: TokenSigner, make_subscriber
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: odd clients POST with no body, JSON or plain text: still unsubscribed, 200."""
    bodies = [
        (b"", None),
        (b'{"List-Unsubscribe": "One-Click"}', "application/json"),
        (b"List-Unsubscribe=One-Click", "text/plain"),
    ]
    for n, (body, content_type) in enumerate(bodies):
        address = f"odd{n}@example.org"
        sid = make_subscriber(address, "en")
        headers = {"Content-Type": content_type} if content_type else {}
        response = client.post(unsubscribe_link(signer, sid), content=body, headers=headers)
        assert response.status_code == 200, content_type
        assert state.subscriber(address)[0] == "unsubscribed"

"""Links act on a person, never on a reused row: ids are never given again, and a link carries
the subscriber's link salt, which a fresh subscription changes (issue 10, item 1)."""

from __future__ import annotations

import base64
import hmac
import struct
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from newsletter import subscriptions
from newsletter.models import LEGACY_LINK_SALT, EventSource, Subscriber
from newsletter.runtime import Runtime
from newsletter.tokens import TokenPurpose, TokenSigner

EDITION_ID = 7
GONE = "This link is no longer valid"


def _link(runtime: Runtime, email: str, purpose: TokenPurpose = TokenPurpose.unsubscribe) -> str:
    """The link our mail would carry for this address now (its id and current salt)."""
    with runtime.session() as s:
        sub = s.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        edition = EDITION_ID if purpose is TokenPurpose.unsubscribe else None
        token = TokenSigner(runtime.settings.secret_key).make(
            purpose, sub.id, edition, salt=sub.link_salt
        )
    return f"/{purpose}/{token}"


def _add(runtime: Runtime, email: str, *, active: bool = True) -> int:
    with runtime.session() as s:
        sub = subscriptions.add_subscriber(
            s, runtime.settings.secret_key, email, "en", confirmed=active
        )
        s.flush()
        return sub.id


def test_erased_readers_links_never_reach_the_next_reader(
    client: TestClient, runtime: Runtime, state
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the newest reader erases themselves; the next one to subscribe gets a new id,
    and every old link of the erased reader shows "no longer valid" and touches nobody."""
    _add(runtime, "first@example.org")
    erased_id = _add(runtime, "erased@example.org")
    old_unsubscribe = _link(runtime, "erased@example.org")
    old_confirm = _link(runtime, "erased@example.org", TokenPurpose.confirm)
    response = client.post(old_unsubscribe + "/erase", data={"confirm": "yes"})
    assert response.status_code == 200
    newcomer = _add(runtime, "newcomer@example.org")
    assert newcomer > erased_id  # SQLite would have given erased_id again without AUTOINCREMENT

    before = state.snapshot()
    for method, suffix, data in [
        ("GET", "", None),
        ("POST", "", {"List-Unsubscribe": "One-Click"}),
        ("POST", "/preferences", {"languages": ["be"], "first": "be"}),
        ("POST", "/export", None),
        ("POST", "/erase", {"confirm": "yes"}),
    ]:
        response = client.request(method, old_unsubscribe + suffix + "?lang=en", data=data)
        assert response.status_code == 410, (method, suffix)
        assert GONE in response.text
        assert "newcomer@example.org" not in response.text
    for method in ("GET", "POST"):
        assert client.request(method, old_confirm + "?lang=en").status_code == 410
    assert state.snapshot() == before
    assert state.subscriber("newcomer@example.org") == ("active", "en")


def test_a_fresh_subscription_retires_the_earlier_links(
    client: TestClient, runtime: Runtime, state
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a reader leaves and subscribes again: links from before act on nobody, the
    new confirmation link works, and pending re-submissions keep the first email's link."""
    _add(runtime, "back@example.org")
    old_link = _link(runtime, "back@example.org")
    old_confirm = _link(runtime, "back@example.org", TokenPurpose.confirm)
    assert client.post(old_link).status_code == 200  # unsubscribed
    client.post("/en/subscribe", data={"email": "back@example.org", "languages": ["en"]})
    assert state.subscriber("back@example.org") == ("pending", "en")
    new_confirm = _link(runtime, "back@example.org", TokenPurpose.confirm)
    client.post("/en/subscribe", data={"email": "back@example.org", "languages": ["en"]})
    # A confirm token carries its issue time, so compare what it does, not its bytes.
    page = client.get(new_confirm + "?lang=en")
    assert page.status_code == 200
    assert GONE not in page.text

    for method in ("GET", "POST"):
        response = client.request(method, old_link + "?lang=en")
        assert response.status_code == 410
        assert GONE in response.text
        assert client.request(method, old_confirm).status_code == 410
    assert state.subscriber("back@example.org") == ("pending", "en")
    assert client.post(new_confirm).status_code == 200
    assert state.subscriber("back@example.org") == ("active", "en")


def _v1_token(secret: str, sid: int, edition: int, issued: datetime) -> str:
    """A version-1 unsubscribe token (before salts: ids in clear), as mail already sent has."""
    sub = sid.to_bytes((sid.bit_length() + 7) // 8 or 1, "big")
    ed = edition.to_bytes((edition.bit_length() + 7) // 8 or 1, "big")
    body = struct.pack(">BBI", 0x12, (len(sub) << 4) | len(ed), int(issued.timestamp())) + sub + ed
    key = hmac.digest(secret.encode(), b"newsletter.tokens.unsubscribe", "sha256")
    mac = hmac.digest(key, body, "sha256")[:16]
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode()


def test_links_mailed_before_the_upgrade_work_only_for_their_own_row(
    client: TestClient, runtime: Runtime, state
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a version-1 link works for a row from before the upgrade (salt 0) made before
    the link; not for a row made after it (a reused id), nor once the salt has rotated."""
    secret = runtime.settings.secret_key
    legacy = _add(runtime, "legacy@example.org")
    later = _add(runtime, "later@example.org")
    fresh = _add(runtime, "fresh@example.org")
    now = datetime.now(UTC)
    with runtime.session() as s:
        s.execute(
            update(Subscriber)
            .where(Subscriber.id.in_([legacy, later]))
            .values(link_salt=LEGACY_LINK_SALT)
        )
        # "later" was made after its link was mailed: the link was someone else's.
        s.execute(
            update(Subscriber)
            .where(Subscriber.id == later)
            .values(created_at=now + timedelta(minutes=5))
        )
    ok = client.get(f"/unsubscribe/{_v1_token(secret, legacy, EDITION_ID, now)}")
    assert ok.status_code == 200
    for sid in (later, fresh):
        response = client.post(f"/unsubscribe/{_v1_token(secret, sid, EDITION_ID, now)}")
        assert response.status_code == 410
    assert state.subscriber("later@example.org") == ("active", "en")
    assert state.subscriber("fresh@example.org") == ("active", "en")
    with runtime.session() as s:
        subscriptions.unsubscribe(s, legacy, source=EventSource.staff)
        subscriptions.subscribe(s, secret, "legacy@example.org", "en")
    assert (
        client.get(f"/unsubscribe/{_v1_token(secret, legacy, EDITION_ID, now)}").status_code == 410
    )

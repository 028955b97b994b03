"""The staff bounces page, reactivation, the edition's bounce and complaint rates with their
warnings, and the same through the API."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from newsletter import bounce_policy
from newsletter.models import Delivery, DeliveryStatus, Event, Subscriber, SubscriberStatus, utcnow
from newsletter.returnpath import InboundAddress
from newsletter.runtime import Runtime
from newsletter.subscriptions import add_subscriber
from newsletter.tokens import TokenSigner

INBOUND = "inbound@news.example.org"


def dsn(address: str, status: str = "5.1.1") -> bytes:
    return (
        "From: MAILER-DAEMON@example.net\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\n<script>alert(1)</script> failed\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: {status}\r\n\r\n--b--\r\n"
    ).encode()


ARF = (
    b"From: fbl@example.com\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: message/feedback-report\r\n\r\n"
    b"Feedback-Type: abuse\r\nVersion: 1\r\n\r\n--b--\r\n"
)


def returned(
    runtime: Runtime, edition_id: int, readers: int, bounced: int, complained: int
) -> list[int]:
    """`readers` active readers with a sent delivery; some bounce, some complain. Inbound ids."""
    settings = replace(runtime.settings, inbound_address=INBOUND)
    signer = TokenSigner(settings.secret_key)
    address = InboundAddress.of(settings)
    assert address is not None
    ids = []
    with runtime.session() as session:
        for i in range(readers):
            reader = add_subscriber(
                session, settings.secret_key, f"r{i}@example.net", "be", confirmed=True
            )
            sid = reader.id
            session.add(
                Delivery(
                    edition_id=edition_id,
                    subscriber_id=sid,
                    status=DeliveryStatus.sent,
                    sent_at=utcnow(),
                )
            )
            raw = (
                dsn(f"r{i}@example.net")
                if i < bounced
                else ARF
                if i < bounced + complained
                else None
            )
            if raw is None:
                continue
            row = bounce_policy.store(
                session,
                settings,
                raw,
                recipient=address.return_path(signer, sid, edition_id, salt=reader.link_salt),
                mail_from="",
                channel="smtp",
            )
            bounce_policy.process(session, settings, signer, row.id)
            ids.append(row.id)
    return ids


def test_admins_see_each_bounce_and_complaint_with_reader_edition_and_raw(
    admin_client: TestClient, runtime: Runtime, edition: Any
) -> None:
    """The bounces page lists both kinds with reader, edition and reason; the raw message
    is shown as text (its HTML inert)."""
    hard, _complaint = returned(runtime, edition.id, readers=3, bounced=1, complained=1)
    page = admin_client.get("/admin/bounces")
    assert page.status_code == 200
    assert "r0@example.net" in page.text and "r1@example.net" in page.text
    assert "hard_bounce" in page.text and "complaint" in page.text and "2020-W05" in page.text
    assert "DSN: hard_bounce (5.1.1)" in page.text
    only = admin_client.get("/admin/bounces", params={"kind": "complaint"})
    assert "r1@example.net" in only.text and "r0@example.net" not in only.text
    raw = admin_client.get(f"/admin/bounces/{hard}")
    assert raw.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw.text and "<script>" not in raw.text
    assert "Final-Recipient: rfc822; r0@example.net" in raw.text


def test_reactivate_undoes_a_false_bounce_and_is_recorded(
    admin_client: TestClient, runtime: Runtime, edition: Any, h: Any
) -> None:
    """An admin reactivates a bounced reader: active again, an event names who did it;
    a complaint offers no such button and the POST is refused."""
    hard, complaint = returned(runtime, edition.id, readers=2, bounced=1, complained=1)
    page = admin_client.get(f"/admin/bounces/{hard}")
    assert "Reactivate r0@example.net" in page.text
    response = admin_client.post(
        f"/admin/bounces/{hard}/reactivate", data={"csrf_token": h.csrf_of(page.text)}
    )
    assert response.status_code == 303
    with runtime.session() as session:
        reader = session.scalars(
            select(Subscriber).where(Subscriber.email == "r0@example.net")
        ).one()
        assert reader.status is SubscriberStatus.active
        event = session.scalars(select(Event).where(Event.kind == "reactivated")).one()
        assert event.detail == {"staff": "ada", "inbound_id": hard}
    refused = admin_client.post(
        f"/admin/bounces/{complaint}/reactivate", data={"csrf_token": h.csrf_of(page.text)}
    )
    assert refused.status_code == 409
    forged = admin_client.post(f"/admin/bounces/{hard}/reactivate", data={"csrf_token": "x"})
    assert forged.status_code == 403


def test_editors_cannot_open_the_bounces_page(
    editor_client: TestClient, runtime: Runtime, edition: Any
) -> None:
    """Raw bounces hold readers' addresses: admins only."""
    (hard,) = returned(runtime, edition.id, readers=1, bounced=1, complained=0)
    assert editor_client.get("/admin/bounces").status_code == 403
    assert editor_client.get(f"/admin/bounces/{hard}").status_code == 403


def test_bad_ids_are_clear_4xx_pages(admin_client: TestClient) -> None:
    """Unknown, negative, huge and non-numeric ids: 404 or 422, never a 500."""
    for path, code in (
        ("/admin/bounces/999", 404),
        ("/admin/bounces/-1", 422),
        ("/admin/bounces/99999999999999999999999", 422),
        ("/admin/bounces/abc", 422),
        ("/admin/bounces?kind=nonsense", 422),
    ):
        assert admin_client.get(path).status_code == code, path


def test_the_edition_page_warns_when_rates_pass_the_thresholds(
    editor_client: TestClient, runtime: Runtime, edition: Any
) -> None:
    """3 bounces and 1 complaint in 40 messages: 7.50 % and 2.50 %, both warned about."""
    returned(runtime, edition.id, readers=40, bounced=3, complained=1)
    page = editor_client.get("/admin/editions/2020-W05")
    assert "Bounces 3 (7.50 %), complaints 1 (2.50 %) of 40 messages." in page.text
    assert "above the 0.1% that Gmail, Yahoo and Microsoft tolerate" in page.text
    assert "above 2%" in page.text


def test_an_edition_under_the_thresholds_has_no_warning(
    editor_client: TestClient, runtime: Runtime, edition: Any
) -> None:
    """1 bounce in 60 messages (1.67 %), no complaint: rates shown, nothing warned."""
    returned(runtime, edition.id, readers=60, bounced=1, complained=0)
    page = editor_client.get("/admin/editions/2020-W05")
    assert "Bounces 1 (1.67 %), complaints 0 (0.00 %) of 60 messages." in page.text
    assert "above" not in page.text


def test_the_api_lists_shows_reactivates_and_gives_rates(
    make_client: Any, runtime: Runtime, edition: Any, tokens: dict[str, str]
) -> None:
    """The API exposes the same: the list (admin), one message raw, reactivate, the rates."""
    hard, _complaint = returned(runtime, edition.id, readers=4, bounced=1, complained=1)
    client = make_client()
    admin = {"Authorization": f"Bearer {tokens['ada']}"}
    editor = {"Authorization": f"Bearer {tokens['erin']}"}
    listing = client.get("/api/bounces", headers=admin).json()
    assert listing["total"] == 2
    assert {i["kind"] for i in listing["items"]} == {"hard_bounce", "complaint"}
    one = client.get(f"/api/bounces/{hard}", headers=admin).json()
    assert one["edition"] == "2020-W05" and "Final-Recipient" in one["raw"]
    assert client.get("/api/bounces", headers=editor).status_code == 403
    done = client.post(f"/api/bounces/{hard}/reactivate", headers=admin)
    assert done.status_code == 200 and done.json()["subscriber_status"] == "active"
    again = client.post(f"/api/bounces/{hard}/reactivate", headers=admin)
    assert again.status_code == 409 and "only a bounced reader" in again.json()["detail"]
    rates = client.get("/api/editions/2020-W05/bounce-rates", headers=editor).json()
    assert rates["attempted"] == 4 and rates["complaints"] == 1 and rates["bounces"] == 1
    assert len(rates["warnings"]) == 2
    assert client.get("/api/editions/2021-W10/bounce-rates", headers=editor).status_code == 404
    assert client.get("/api/editions/2020-W99/bounce-rates", headers=editor).status_code == 422
    assert client.get("/api/bounces/0", headers=admin).status_code == 422

"""The staff area lists confirmation emails that have not left."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from newsletter.models import Subscriber, SubscriberStatus, utcnow
from newsletter.runtime import Runtime


def test_subscribers_page_lists_late_confirmations(
    admin_client: TestClient, runtime: Runtime, h: Any
) -> None:
    """An address whose confirmation failed twice an hour ago is listed with its error and
    next try; one confirmed long ago and one whose confirmation left are not."""
    now = utcnow()
    with runtime.session() as session:
        session.add_all(
            [
                Subscriber(
                    email="waiting@example.org",
                    languages="be",
                    status=SubscriberStatus.pending,
                    created_at=now - timedelta(hours=1),
                    confirm_attempts=2,
                    confirm_error="421 4.3.0 <b>try later</b>",
                    confirm_due_at=now + timedelta(minutes=1),
                ),
                Subscriber(
                    email="mailed@example.org",
                    languages="ru",
                    status=SubscriberStatus.pending,
                    created_at=now - timedelta(hours=1),
                    confirm_sent_at=now - timedelta(hours=1),
                ),
                Subscriber(email="reader@example.org", languages="en", status="active"),
            ]
        )
    page = admin_client.get("/admin/subscribers")
    assert page.status_code == 200
    late = page.text.split("Late confirmations (1)")[1].split("</table>")[0]
    assert "waiting@example.org" in late and "mailed@example.org" not in late
    assert "&lt;b&gt;try later&lt;/b&gt;" in late  # the relay's words, shown literally

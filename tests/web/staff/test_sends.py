"""Sending from the staff area and the API: now, scheduled, paused, resumed, cancelled."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from newsletter.models import Edition, EditionStatus, Subscriber, SubscriberStatus
from newsletter.runtime import Runtime


def add_readers(runtime: Runtime, count: int = 3) -> None:
    with runtime.session() as session:
        for i in range(count):
            session.add(
                Subscriber(
                    email=f"reader{i}@example.org",
                    languages=("be", "ru,en", "en,be,ru")[i % 3],
                    status=SubscriberStatus.active,
                )
            )


def edition_row(runtime: Runtime) -> Edition:
    with runtime.session() as session:
        return session.query(Edition).filter_by(week="2020-W05").one()


def test_send_pause_resume_cancel_from_the_staff_area(
    editor_client: TestClient,
    runtime: Runtime,
    edition: Any,
    held_jobs: list[tuple[str, dict[str, Any]]],
    h: Any,
) -> None:
    """An editor sends the week; progress counts the queue; pause, resume, cancel work."""
    add_readers(runtime)
    token = h.form_csrf(editor_client, "/admin/editions/2020-W05")
    sent = editor_client.post(
        "/admin/editions/2020-W05/send", data={"csrf_token": token, "confirmed": "yes"}
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == "/admin/editions/2020-W05/progress"
    assert any(name == "send_batch" for name, _ in held_jobs)  # handed over after commit
    page = editor_client.get("/admin/editions/2020-W05/progress")
    assert page.status_code == 200 and "/admin/static/progress.js" in page.text
    data = editor_client.get("/admin/editions/2020-W05/progress.json").json()
    assert data["status"] == "sending"
    assert (data["total"], data["queued"], data["sent"], data["percent"]) == (3, 3, 0, 0.0)
    script = editor_client.get("/admin/static/progress.js")
    assert script.status_code == 200 and "progress.json" not in script.text  # URL from page

    for action, status in (("pause", "paused"), ("resume", "sending"), ("cancel", "cancelled")):
        response = editor_client.post(
            f"/admin/editions/2020-W05/{action}", data={"csrf_token": token}
        )
        assert response.status_code == 303, (action, response.text)
        assert (
            editor_client.get("/admin/editions/2020-W05/progress.json").json()["status"] == status
        )
    final = editor_client.get("/admin/editions/2020-W05/progress.json").json()
    assert (final["skipped"], final["queued"]) == (3, 0)
    again = editor_client.post("/admin/editions/2020-W05/pause", data={"csrf_token": token})
    assert again.status_code == 409  # a cancelled send cannot be paused


def test_schedule_in_the_configured_time_zone(
    editor_client: TestClient, runtime: Runtime, edition: Any, h: Any
) -> None:
    """A schedule typed as local time is stored in UTC, shown back locally, and cancelled."""
    token = h.form_csrf(editor_client, "/admin/editions/2020-W05")
    past = editor_client.post(
        "/admin/editions/2020-W05/schedule",
        data={"csrf_token": token, "at": "2020-02-03T09:00"},
    )
    assert past.status_code == 422 and "past" in past.text
    for bad in ("", "tomorrow", "2020-13-45T99:00"):
        response = editor_client.post(
            "/admin/editions/2020-W05/schedule", data={"csrf_token": token, "at": bad}
        )
        assert response.status_code == 422, bad
    response = editor_client.post(
        "/admin/editions/2020-W05/schedule",
        data={"csrf_token": token, "at": "2035-01-08T09:00"},
    )
    assert response.status_code == 303
    row = edition_row(runtime)
    assert row.status == EditionStatus.scheduled
    scheduled = (
        row.scheduled_at if row.scheduled_at.tzinfo else row.scheduled_at.replace(tzinfo=UTC)
    )  # type: ignore[union-attr]
    assert scheduled == datetime(2035, 1, 8, 6, 0, tzinfo=UTC)  # Minsk is UTC+3
    page = editor_client.get("/admin/editions/2020-W05")
    assert "Scheduled for 2035-01-08 09:00 Europe/Minsk (UTC+03:00)" in page.text
    cancel = editor_client.post("/admin/editions/2020-W05/cancel", data={"csrf_token": token})
    assert cancel.status_code == 303
    assert edition_row(runtime).status == EditionStatus.cancelled


def test_incomplete_edition_needs_a_fallback(
    editor_client: TestClient, runtime: Runtime, edition: Any, h: Any
) -> None:
    """Sending an edition with a missing translation is refused until a fallback is chosen."""
    with runtime.session() as session:
        row = session.query(Edition).filter_by(week="2020-W05").one()
        session.delete(row.articles[0].translation("en"))
    add_readers(runtime, 1)
    token = h.form_csrf(editor_client, "/admin/editions/2020-W05")
    refused = editor_client.post(
        "/admin/editions/2020-W05/send", data={"csrf_token": token, "confirmed": "yes"}
    )
    assert refused.status_code == 409 and "fallback" in refused.text
    assert edition_row(runtime).status == EditionStatus.draft
    ok = editor_client.post(
        "/admin/editions/2020-W05/send",
        data={"csrf_token": token, "fallback": "ru", "confirmed": "yes"},
    )
    assert ok.status_code == 303
    assert edition_row(runtime).status == EditionStatus.sending


def test_sends_through_the_api(
    client: TestClient,
    tokens: dict[str, str],
    runtime: Runtime,
    edition: Any,
    held_jobs: list[tuple[str, dict[str, Any]]],
) -> None:
    """An editor's token schedules, cancels, sends, pauses, resumes and reads progress."""
    auth = {"Authorization": f"Bearer {tokens['erin']}"}
    add_readers(runtime)
    scheduled = client.post("/api/sends/2020-W05", headers=auth, json={"at": "2035-01-08T09:00:00"})
    assert scheduled.status_code == 202, scheduled.text
    assert scheduled.json()["status"] == "scheduled"
    assert scheduled.json()["scheduled_at"].startswith("2035-01-08T06:00:00")
    assert client.post("/api/sends/2020-W05/cancel", headers=auth).json()["status"] == "cancelled"

    with runtime.session() as session:  # a fresh week to send now
        session.query(Edition).filter_by(week="2020-W05").one().status = EditionStatus.draft
    started = client.post("/api/sends/2020-W05", headers=auth, json={})
    assert started.status_code == 202
    body = started.json()
    assert (body["status"], body["total"], body["queued"]) == ("sending", 3, 3)
    assert [name for name, _ in held_jobs].count("send_batch") >= 1
    assert client.post("/api/sends/2020-W05/pause", headers=auth).json()["status"] == "paused"
    paused_again = client.post("/api/sends/2020-W05/pause", headers=auth)
    assert paused_again.status_code == 409 and "detail" in paused_again.json()
    assert client.post("/api/sends/2020-W05/resume", headers=auth).json()["status"] == "sending"
    progress = client.get("/api/sends/2020-W05", headers=auth).json()
    assert (progress["week"], progress["total"]) == ("2020-W05", 3)

    for body_json, status in (
        ({"at": "2001-01-01T00:00:00"}, 422),
        ({"at": "not a time"}, 422),
        ({"fallback_language": "de"}, 422),
    ):
        response = client.post("/api/sends/2020-W05", headers=auth, json=body_json)
        assert response.status_code == status, body_json
    assert client.post("/api/sends/2031-W01", headers=auth, json={}).status_code == 404
    assert client.get("/api/sends/2020-W05").status_code == 401


def outbox_messages(runtime: Runtime) -> list[Any]:
    import mailbox

    folder = runtime.settings.outbox
    return list(mailbox.Maildir(folder, create=False)) if folder.exists() else []


def test_test_send_from_the_staff_area_and_the_api(
    editor_client: TestClient,
    client: TestClient,
    tokens: dict[str, str],
    runtime: Runtime,
    edition: Any,
    h: Any,
) -> None:
    """A test email goes to the given address (the outbox), from the page and the API."""
    pytest.importorskip("newsletter.messages")
    token = h.form_csrf(editor_client, "/admin/editions/2020-W05")
    page = editor_client.post(
        "/admin/editions/2020-W05/test", data={"csrf_token": token, "to": "editor@example.org"}
    )
    assert page.status_code == 200, page.text
    assert "went to editor@example.org" in page.text
    assert all(m["To"].endswith("editor@example.org") for m in outbox_messages(runtime))
    bad = editor_client.post(
        "/admin/editions/2020-W05/test", data={"csrf_token": token, "to": "nobody"}
    )
    assert bad.status_code == 422
    auth = {"Authorization": f"Bearer {tokens['erin']}"}
    response = client.post("/api/sends/2020-W05/test", headers=auth, json={"to": "me@example.org"})
    assert response.status_code == 200, response.text
    assert len(outbox_messages(runtime)) >= 2
    assert edition_row(runtime).status == EditionStatus.draft  # a test is not a send


def test_a_send_started_by_the_api_reaches_every_reader(
    client: TestClient,
    tokens: dict[str, str],
    runtime: Runtime,
    edition: Any,
    held_jobs: list[tuple[str, dict[str, Any]]],
) -> None:
    """Started through the API and run by the worker, the send mails each reader once."""
    pytest.importorskip("newsletter.messages")
    from newsletter.jobs import run_job

    add_readers(runtime)
    auth = {"Authorization": f"Bearer {tokens['erin']}"}
    assert client.post("/api/sends/2020-W05", headers=auth, json={}).status_code == 202
    while held_jobs:  # the worker starts and drains the queue
        name, kwargs = held_jobs.pop(0)
        run_job(runtime, name, kwargs)
    progress = client.get("/api/sends/2020-W05", headers=auth).json()
    assert (progress["status"], progress["sent"], progress["percent"]) == ("sent", 3, 100.0)
    recipients = sorted(m["To"] for m in outbox_messages(runtime))
    assert recipients == [f"reader{i}@example.org" for i in range(3)]


def test_retry_button_queues_failed_deliveries_again(
    editor_client: TestClient,
    runtime: Runtime,
    edition: Any,
    held_jobs: list[tuple[str, dict[str, Any]]],
    h: Any,
) -> None:
    """A sent edition with a failed delivery: its page offers "Retry failed deliveries";
    pressing it queues that delivery again and hands a batch over; a draft refuses (409)."""
    from newsletter.models import Delivery, DeliveryStatus

    add_readers(runtime, 2)
    with runtime.session() as session:
        row = session.query(Edition).filter_by(week="2020-W05").one()
        row.status = EditionStatus.sent
        people = session.query(Subscriber).order_by(Subscriber.id).all()
        session.add_all(
            [
                Delivery(edition_id=row.id, subscriber_id=people[0].id, status=DeliveryStatus.sent),
                Delivery(
                    edition_id=row.id,
                    subscriber_id=people[1].id,
                    status=DeliveryStatus.failed,
                    attempts=8,
                    last_error="gave up after 8 attempts: 452 mailbox full",
                ),
            ]
        )
    page = editor_client.get("/admin/editions/2020-W05")
    assert "Retry failed deliveries" in page.text and "/admin/editions/2020-W05/retry" in page.text
    token = h.form_csrf(editor_client, "/admin/editions/2020-W05")
    response = editor_client.post("/admin/editions/2020-W05/retry", data={"csrf_token": token})
    assert response.status_code == 303
    assert [name for name, _ in held_jobs] == ["send_batch"]
    data = editor_client.get("/admin/editions/2020-W05/progress.json").json()
    assert (data["queued"], data["failed"], data["sent"]) == (1, 0, 1)
    with runtime.session() as session:
        session.query(Edition).filter_by(week="2020-W05").one().status = EditionStatus.draft
    refused = editor_client.post("/admin/editions/2020-W05/retry", data={"csrf_token": token})
    assert refused.status_code == 409

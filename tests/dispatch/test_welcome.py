"""New readers get the latest edition: once, in their languages, as a delivery like any other."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest
from dispatch_kit import (
    WEEK,
    RecordingJobs,
    celery_worker,
    pg_only,
    slow_smtp_server,
    wait_until,
)
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from newsletter import dispatch, subscriptions
from newsletter.config import Settings
from newsletter.errors import ConfigError, IllegalTransition
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    EventSource,
    Subscriber,
    utcnow,
)
from newsletter.runtime import Runtime
from newsletter.tokens import TokenPurpose, TokenSigner
from newsletter.web.app import create_app

NEW = "new.reader@example.org"


@pytest.fixture
def smtp_runtime(settings, engine, smtp_server):  # type: ignore[no-untyped-def]
    url, handler = smtp_server
    return Runtime(replace(settings, smtp_url=url), _engine=engine), handler


def send_edition(runtime: Runtime, readers, count: int = 3) -> None:  # type: ignore[no-untyped-def]
    """The sample week goes out to `count` readers and ends sent."""
    readers(count)
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=runtime.jobs)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with runtime.session() as session:
            if dispatch.progress(session, WEEK).status is EditionStatus.sent:
                return
            dispatch.tick(session, runtime.settings, runtime.jobs, idle_after=0)
        time.sleep(0.1)
    raise AssertionError("the edition was not sent")


def pending(runtime: Runtime, email: str = NEW, languages: str = "ru,en") -> int:
    with runtime.session() as session:
        sub = subscriptions.add_subscriber(
            session, runtime.settings.secret_key, email, languages, confirmed=False
        )
        session.flush()
        return sub.id


def confirm_link(runtime: Runtime, subscriber_id: int) -> str:
    """The link the confirmation email holds (signed with the reader's current salt)."""
    with runtime.session() as session:
        salt = session.scalar(select(Subscriber.link_salt).where(Subscriber.id == subscriber_id))
    signer = TokenSigner(runtime.settings.secret_key)
    return f"/confirm/{signer.make(TokenPurpose.confirm, subscriber_id, salt=salt)}"


def confirm(client: TestClient, runtime: Runtime, subscriber_id: int):  # type: ignore[no-untyped-def]
    """Press the confirm button; then wait for what the app hands over after its answer."""
    page = client.post(confirm_link(runtime, subscriber_id))
    client.app.state.after_response.drain()  # type: ignore[attr-defined]
    return page


def started_days_ago(runtime: Runtime, days: float) -> None:
    with runtime.session() as session:
        session.execute(
            update(Edition)
            .where(Edition.week == WEEK)
            .values(started_at=utcnow() - timedelta(days=days))
        )


def edition_row(runtime: Runtime) -> Edition:
    with runtime.session() as session:
        return session.scalars(select(Edition).where(Edition.week == WEEK)).one()


def subject(raw: bytes) -> str:
    return str(make_header(decode_header(message_from_bytes(raw)["Subject"])))


def test_confirming_reader_gets_the_latest_edition_once(smtp_runtime, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a week after nobody new, someone confirms through their link: the edition of
    this week arrives at once in their languages and order, and is counted; confirming again,
    or leaving and confirming anew, never sends it twice."""
    runtime, handler = smtp_runtime
    send_edition(runtime, readers)
    assert len(handler.messages) == 3
    reader = pending(runtime)
    with TestClient(create_app(runtime.settings, runtime=runtime)) as client:
        page = confirm(client, runtime, reader)
        assert page.status_code == 200
        assert "Свежий выпуск уже отправлен вам на почту" in page.text  # the reader is told
        got = handler.by_recipient()[NEW]
        assert len(got) == 1
        message = message_from_bytes(got[0])
        assert message["Content-Language"] == "ru, en"
        assert subject(got[0]).startswith("Ситуация в Беларуси: 27 января")
        assert message["List-Unsubscribe"].startswith("<https://news.example.org/unsubscribe/")
        done = edition_row(runtime)
        assert (done.status, done.sent_count, done.planned_count) == (EditionStatus.sent, 4, 4)

        # The same link again; then unsubscribe, subscribe again and confirm again.
        assert confirm(client, runtime, reader).status_code == 200
        with runtime.session() as session:
            subscriptions.unsubscribe(session, reader, source=EventSource.staff)
        with runtime.session() as session:
            again = subscriptions.subscribe(
                session, runtime.settings.secret_key, NEW, ("ru", "en")
            ).subscriber.id
        assert confirm(client, runtime, again).status_code == 200
    assert len(handler.by_recipient()[NEW]) == 1
    assert len(handler.messages) == 4
    with runtime.session() as session:
        deliveries = session.scalars(select(Delivery).where(Delivery.subscriber_id == reader))
        assert [d.status for d in deliveries] == [DeliveryStatus.sent]


@pytest.mark.parametrize(
    ("days_ago", "window", "expected"),
    [
        (5.9, 6, 1),  # within the window
        (6.1, 6, 0),  # older than the window
        (0.0, 0, 0),  # 0 turns it off
        (29.0, 30, 1),  # a longer window
    ],
)
def test_only_a_recent_edition_is_sent(  # type: ignore[no-untyped-def]
    smtp_runtime, edition, readers, days_ago, window, expected
) -> None:
    """Scenario: the edition went out `days_ago` days ago; the window decides the welcome."""
    runtime, handler = smtp_runtime
    send_edition(runtime, readers, 1)
    started_days_ago(runtime, days_ago)
    runtime = replace(runtime, settings=replace(runtime.settings, welcome_latest_days=window))
    reader = pending(runtime)
    with TestClient(create_app(runtime.settings, runtime=runtime)) as client:
        page = confirm(client, runtime, reader)
    assert page.status_code == 200
    told = "Свежий выпуск" if expected else "Следующий выпуск придёт на вашу почту"
    assert told in page.text
    assert len(handler.by_recipient().get(NEW, [])) == expected
    assert edition_row(runtime).sent_count == 1 + expected


def test_no_welcome_before_any_edition_or_for_a_draft(smtp_runtime, edition) -> None:  # type: ignore[no-untyped-def]
    """Scenario: only a draft exists (nothing went out yet): confirming sends no edition."""
    runtime, handler = smtp_runtime
    reader = pending(runtime)
    with TestClient(create_app(runtime.settings, runtime=runtime)) as client:
        assert confirm(client, runtime, reader).status_code == 200
    assert handler.messages == []
    assert edition_row(runtime).status is EditionStatus.draft


def test_a_lost_welcome_job_and_a_dead_worker_are_recovered_by_the_tick(
    smtp_runtime, edition, readers
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the welcome's job is lost (broker restart), then a worker dies holding the
    claim: each time the tick puts the delivery back, and it goes out exactly once."""
    runtime, handler = smtp_runtime
    send_edition(runtime, readers, 2)
    reader = pending(runtime)
    lost = RecordingJobs()
    with runtime.session() as session:
        subscriptions.confirm(session, reader, source=EventSource.link)
        assert dispatch.welcome(session, runtime.settings, reader, lost) == WEEK
    assert [name for name, _ in lost.published] == ["send_batch"]
    lost.published.clear()  # the job never reaches a worker
    assert NEW not in handler.by_recipient()

    # A worker took it and died before sending: the claim is stale.
    with runtime.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.subscriber_id == reader)
            .values(status=DeliveryStatus.sending, claimed_at=utcnow() - timedelta(hours=1))
        )
    jobs = RecordingJobs()
    with runtime.session() as session:  # seen stale once: noted, taken back a period later
        assert dispatch.tick(session, runtime.settings, jobs, idle_after=0).requeued == 0
    later = utcnow() + timedelta(seconds=runtime.settings.stale_after + 1)
    with runtime.session() as session:
        report = dispatch.tick(session, runtime.settings, jobs, now=later, idle_after=0)
    assert report.requeued == 1 and report.reenqueued == [WEEK]
    jobs.run(runtime)
    assert len(handler.by_recipient()[NEW]) == 1
    done = edition_row(runtime)
    assert (done.status, done.sent_count) == (EditionStatus.sent, 3)
    with runtime.session() as session:
        assert not dispatch.tick(session, runtime.settings, jobs, idle_after=0)
    assert jobs.run(runtime) == []
    assert len(handler.messages) == 3


def test_send_again_on_a_sent_edition_is_refused_in_one_line(
    cli, runtime, edition, readers
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: staff run `send` again after the edition went out: one line, exit 1, and
    nobody is mailed; the line says how later readers get it."""
    send_edition(runtime, readers, 2)
    before = edition_row(runtime)
    result = cli("send", "--week", WEEK)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: edition {WEEK} was sent on ")
    assert "never sent again" in lines[0] and "within 6 days" in lines[0]
    after = edition_row(runtime)
    assert (after.status, after.sent_count, after.planned_count) == (
        before.status,
        before.sent_count,
        before.planned_count,
    )
    with pytest.raises(IllegalTransition), runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=runtime.jobs)


@pytest.mark.parametrize("raw", ["-1", "six", "６", "٦", "1.5", "99999999", " 6 7"])
def test_welcome_days_setting_refuses_nonsense(raw: str) -> None:
    """Scenario: NEWSLETTER_WELCOME_LATEST_DAYS is not a whole number of days: refused."""
    env = {"NEWSLETTER_WELCOME_LATEST_DAYS": raw, "NEWSLETTER_SECRET_KEY": "k" * 40}
    with pytest.raises(ConfigError, match="WELCOME_LATEST_DAYS"):
        Settings.from_env(env)


def test_welcome_days_setting_reads_whole_days() -> None:
    """Scenario: the default is 6 days, 0 turns the welcome off."""
    key = {"NEWSLETTER_SECRET_KEY": "k" * 40}
    assert Settings.from_env(key).welcome_latest_days == 6
    assert (
        Settings.from_env({**key, "NEWSLETTER_WELCOME_LATEST_DAYS": "0"}).welcome_latest_days == 0
    )
    assert (
        Settings.from_env({**key, "NEWSLETTER_WELCOME_LATEST_DAYS": "14"}).welcome_latest_days == 14
    )


def test_welcome_skips_a_reader_who_is_not_active(smtp_runtime, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a forged call for a reader still pending plans nothing."""
    runtime, _handler = smtp_runtime
    send_edition(runtime, readers, 1)
    reader = pending(runtime)
    jobs = RecordingJobs()
    with runtime.session() as session:
        assert dispatch.welcome(session, runtime.settings, reader, jobs) is None
    assert jobs.published == []
    with runtime.session() as session:
        assert session.scalar(select(Subscriber.status).where(Subscriber.id == reader)).value == (
            "pending"
        )


@pytest.mark.slow
@pg_only
def test_welcome_goes_through_a_celery_worker(  # type: ignore[no-untyped-def]
    broker_settings, engine, smtp_server, edition, readers
) -> None:
    """Scenario: the production shape: the web app only publishes the welcome's job to the
    broker, and a Celery worker sends it, as it sends any batch; the edition stays sent."""
    url, handler = smtp_server
    from workers.publish import celery_jobs

    runtime = Runtime(
        replace(broker_settings, smtp_url=url), _engine=engine, broker_jobs=celery_jobs
    )
    readers(2, sets=[("be",)])
    with celery_worker(runtime.settings):
        with runtime.session() as session:
            dispatch.start_send(session, runtime.settings, WEEK, jobs=runtime.jobs)
        wait_until(lambda: edition_row(runtime).status is EditionStatus.sent, timeout=60)
        reader = pending(runtime, languages="en,be")
        with TestClient(create_app(runtime.settings, runtime=runtime)) as client:
            assert confirm(client, runtime, reader).status_code == 200
        wait_until(lambda: NEW in handler.by_recipient(), timeout=60)
        wait_until(lambda: edition_row(runtime).sent_count == 3, timeout=30)
    message = message_from_bytes(handler.by_recipient()[NEW][0])
    assert message["Content-Language"] == "en, be"
    assert edition_row(runtime).status is EditionStatus.sent
    assert len(handler.messages) == 3


def test_confirm_page_does_not_wait_for_the_welcome(  # type: ignore[no-untyped-def]
    settings, engine, edition, readers
) -> None:
    """Scenario: the mail server takes two seconds per reply: the confirm page still answers
    at once, and the welcome arrives after it, through the app's after-response thread."""
    with slow_smtp_server(0.0) as (url, handler):
        runtime = Runtime(replace(settings, smtp_url=url), _engine=engine)
        send_edition(runtime, readers, 1)
        handler.delay = 2.0
        reader = pending(runtime)
        with TestClient(create_app(runtime.settings, runtime=runtime)) as client:
            began = time.monotonic()
            page = client.post(confirm_link(runtime, reader))
            answered = time.monotonic() - began
            assert page.status_code == 200 and "Свежий выпуск" in page.text
            assert NEW not in handler.copies()  # not yet: it leaves after the answer
            client.app.state.after_response.drain()  # type: ignore[attr-defined]
        assert answered < 2.0, answered  # RCPT and end-of-data alone take 4 s
        assert handler.copies()[NEW] == 1


def test_a_welcome_of_an_edition_edited_since_it_went_out_is_skipped_once(
    smtp_runtime, edition, readers
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: after the week went out, staff delete its Russian translation of an article;
    then a Russian reader confirms. Their welcome cannot be rendered: it is skipped with the
    reason, nothing broken is mailed, and the tick does not queue it again and again."""
    from newsletter.models import ArticleTranslation

    runtime, handler = smtp_runtime
    send_edition(runtime, readers, 2)
    with runtime.session() as session:
        translations = session.scalars(
            select(ArticleTranslation).where(ArticleTranslation.lang == "ru")
        )
        session.delete(next(iter(translations)))
    reader = pending(runtime, languages="ru")
    jobs = RecordingJobs()
    with runtime.session() as session:
        subscriptions.confirm(session, reader, source=EventSource.link)
        assert dispatch.welcome(session, runtime.settings, reader, jobs) == WEEK
    jobs.run(runtime)
    assert NEW not in handler.by_recipient()
    with runtime.session() as session:
        welcome = session.scalars(select(Delivery).where(Delivery.subscriber_id == reader)).one()
        assert welcome.status is DeliveryStatus.skipped
        assert "changed since" in (welcome.last_error or "")
    later = utcnow() + timedelta(seconds=3 * runtime.settings.stale_after)
    for at in (utcnow(), later):
        with runtime.session() as session:
            assert not dispatch.tick(session, runtime.settings, jobs, now=at, idle_after=0)
    assert jobs.run(runtime) == []
    assert edition_row(runtime).status is EditionStatus.sent

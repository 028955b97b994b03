"""The beat tick: the weekly rule in local time across DST, due schedules, recovery."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from dispatch_kit import SAMPLE, WEEK
from sqlalchemy import select

from newsletter import dispatch
from newsletter.config import WeeklySend
from newsletter.dispatch import store
from newsletter.models import ArticleTranslation, Edition, EditionStatus, utcnow
from newsletter.runtime import Runtime


@pytest.fixture
def vilnius(settings, engine):  # type: ignore[no-untyped-def]
    """Weekly rule MON 09:00 in Europe/Vilnius (EET, EEST from 29 March 2020)."""
    return Runtime(
        replace(settings, timezone="Europe/Vilnius", weekly_send=WeeklySend.parse("MON 09:00")),
        _engine=engine,
    )


def _edition_for(runtime: Runtime, week: str) -> None:
    from newsletter.editions import import_edition_file

    with runtime.session() as session:
        import_edition_file(session, SAMPLE).week = week


def _tick(runtime: Runtime, jobs, when: datetime) -> dispatch.TickReport:  # type: ignore[no-untyped-def]
    with runtime.session() as session:
        return dispatch.tick(session, runtime.settings, jobs, now=when)


def _status(runtime: Runtime, week: str) -> EditionStatus:
    with runtime.session() as session:
        return session.scalar(select(Edition.status).where(Edition.week == week))


def test_weekly_rule_follows_local_time_across_dst(vilnius, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: MON 09:00 Vilnius is 07:00 UTC before the DST change and 06:00 after; once each."""
    readers(3)
    _edition_for(vilnius, "2020-W12")  # sent Monday 23 March, winter time
    _edition_for(vilnius, "2020-W13")  # sent Monday 30 March, summer time
    before = datetime(2020, 3, 23, 6, 59, tzinfo=UTC)
    assert _tick(vilnius, recording_jobs, before).started == []
    assert _tick(vilnius, recording_jobs, before + timedelta(minutes=1)).started == ["2020-W12"]
    assert _tick(vilnius, recording_jobs, before + timedelta(minutes=5)).started == []
    assert _status(vilnius, "2020-W12") is EditionStatus.sending

    after = datetime(2020, 3, 30, 5, 59, tzinfo=UTC)
    assert _tick(vilnius, recording_jobs, after).started == []
    assert _status(vilnius, "2020-W13") is EditionStatus.draft
    assert _tick(vilnius, recording_jobs, after + timedelta(minutes=1)).started == ["2020-W13"]
    assert _tick(vilnius, recording_jobs, after + timedelta(hours=3)).started == []
    planned = [kw["edition_id"] for name, kw in recording_jobs.published if name == "send_batch"]
    assert len(planned) == 2  # one batch per edition, each planned once


def test_weekly_rule_waits_for_a_complete_edition(vilnius, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: an incomplete edition records why it waits, and goes once it is complete."""
    readers(2)
    _edition_for(vilnius, "2020-W13")
    with vilnius.session() as session:
        missing = session.scalars(select(ArticleTranslation).where(ArticleTranslation.lang == "en"))
        session.delete(next(iter(missing)))
    when = datetime(2020, 3, 30, 6, 30, tzinfo=UTC)
    report = _tick(vilnius, recording_jobs, when)
    assert report.started == [] and "2020-W13" in report.waiting
    with vilnius.session() as session:
        edition = session.scalar(select(Edition).where(Edition.week == "2020-W13"))
        assert edition.status is EditionStatus.draft and "translation" in edition.waiting_reason
        edition.fallback_language = "ru"  # staff choose a fallback: now it is complete
    assert _tick(vilnius, recording_jobs, when + timedelta(hours=1)).started == ["2020-W13"]
    assert _tick(vilnius, recording_jobs, when + timedelta(hours=2)).started == []


def test_scheduled_send_starts_when_due(runtime, edition, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a send stored for later starts at the first tick after its time."""
    readers(4)
    at = utcnow() + timedelta(minutes=30)
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, at=at, jobs=recording_jobs)
    assert _tick(runtime, recording_jobs, at - timedelta(seconds=1)).started == []
    assert _tick(runtime, recording_jobs, at + timedelta(seconds=1)).started == [WEEK]
    assert _status(runtime, WEEK) is EditionStatus.sending


def test_tick_recovers_lost_batches(runtime, edition, readers, recording_jobs) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a worker died holding claims and its queued batches were lost: the tick
    re-enqueues the batches once the edition is idle, and queues the claims again once it
    has seen them unrenewed for a whole stale period."""
    readers(30)
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=recording_jobs)
    with runtime.sessions.begin() as session:
        store.claim(session, edition.id, 0, None, 10, utcnow())
    recording_jobs.published.clear()  # the broker lost everything
    soon = utcnow() + timedelta(seconds=1)
    assert _tick(runtime, recording_jobs, soon).reenqueued == []  # not idle yet
    period = timedelta(seconds=runtime.settings.stale_after + 1)
    later = utcnow() + period
    report = _tick(runtime, recording_jobs, later)
    assert report.requeued == 0 and report.reenqueued == [WEEK]  # seen stale once: noted
    assert _tick(runtime, recording_jobs, later + period / 2).requeued == 0
    report = _tick(runtime, recording_jobs, later + period)
    assert report.requeued == 10 and report.reenqueued == [WEEK]
    recording_jobs.run(runtime)
    with runtime.session() as session:
        p = dispatch.progress(session, WEEK)
    assert (p.status, p.sent) == (EditionStatus.sent, 30)

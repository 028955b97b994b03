"""One sender per process, shared by threads: variants prepared once, one rate limit."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime

from dispatch_kit import WEEK, RecordingJobs

from newsletter import dispatch
from newsletter.dispatch import store
from newsletter.dispatch.sending import Pacer, Sender
from newsletter.message_ids import read_message_id
from newsletter.models import EditionStatus
from newsletter.runtime import Runtime


def test_threads_share_one_sender(
    settings, engine, smtp_server, edition, readers, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: four request threads run batches of one edition through the runtime's one
    sender: each language set is rendered once in all, and every reader gets one copy."""
    url, handler = smtp_server
    # One batch plans everybody at the start: no `plan` job is needed.
    runtime = Runtime(replace(settings, smtp_url=url, batch_size=100), _engine=engine)
    readers(40, sets=[("be",), ("ru", "en")])
    jobs = RecordingJobs()
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=jobs)
    sender = runtime.sender
    assert runtime.sender is sender  # built once per runtime (process)
    rendered: list[tuple[str, ...]] = []
    import newsletter.messages as messages

    prepare = messages.prepare_edition_messages

    def counting(session, settings, edition, sets, **kwargs):  # type: ignore[no-untyped-def]
        rendered.extend(tuple(s) for s in sets)  # a spy: the real rendering still runs
        return prepare(session, settings, edition, sets, **kwargs)

    monkeypatch.setattr(messages, "prepare_edition_messages", counting)
    with runtime.session() as session:  # four batches of ten readers, one per thread
        ranges = store.batch_ranges(session, edition.id, 10)
    assert len(ranges) == 4

    def work(first: int, last: int | None) -> None:
        dispatch.send_batch(
            runtime.sessions,
            runtime.settings,
            runtime.transport,
            edition_id=edition.id,
            first_id=first,
            last_id=last,
            sender=sender,
        )

    threads = [threading.Thread(target=work, args=r) for r in ranges]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(rendered) == [("be",), ("ru", "en")]  # each once, whatever the threads
    assert {r: len(c) for r, c in handler.by_recipient().items()} == {
        f"reader{i}@example.org": 1 for i in range(40)
    }
    with runtime.session() as session:
        assert dispatch.progress(session, WEEK).status is EditionStatus.sent


def test_one_pacer_holds_the_rate_across_threads() -> None:
    """Scenario: three threads book 10 messages each against one 100/s pacer: the 30 take
    about 0.3 s, not the 0.1 s that three pacers of their own would allow."""
    pacer = Pacer(100.0)
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: [pacer.wait(1) for _ in range(10)]) for _ in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started >= 0.28


def test_message_ids_belong_to_the_sender_and_name_one_reader(settings) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the sender's Message-IDs carry the From domain and a token of the reader,
    edition and link salt; another process's sender makes the same one (the crash window's
    second copy), another reader, edition or salt a different one."""
    sender = Sender(settings)
    created = datetime(2020, 2, 3, 9, 0, tzinfo=UTC)
    make = sender.message_ids(1, created)
    one = make(5, 77)
    assert one.endswith("@news.example.org>") and sender.domain == "news.example.org"
    assert Sender(settings).message_ids(1, created)(5, 77) == one
    others = {make(6, 77), make(5, 78), sender.message_ids(2, created)(5, 77)}
    assert one not in others and len(others) == 3
    data = read_message_id(sender.signer, one)
    assert data is not None and (data.subscriber_id, data.edition_id, data.salt) == (5, 1, 77)


def test_warm_up_prepares_without_changing_anything(runtime, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """A worker's warm-up runs the send path's statements against nothing and prepares one
    variant of the newest edition: no row changes, and that variant is ready."""
    from sqlalchemy import func, select

    from newsletter.dispatch.sending import warm_up
    from newsletter.models import Delivery, Edition, Subscriber

    readers(3)

    def state() -> tuple[object, ...]:
        with runtime.session() as session:
            return (
                session.scalar(select(func.count()).select_from(Delivery)),
                tuple(session.execute(select(Edition.id, Edition.status, Edition.updated_at))),
                tuple(session.execute(select(Subscriber.id, Subscriber.status))),
            )

    before = state()
    sender = Sender(runtime.settings)
    warm_up(runtime.sessions, sender)
    assert state() == before
    key = (edition.id, edition.week, edition.created_at, runtime.settings)
    assert sender.prepared(key) == {edition.languages[0]}


def test_warm_up_with_no_edition_or_an_unfinished_draft(runtime, caplog) -> None:  # type: ignore[no-untyped-def]
    from newsletter.dispatch.sending import warm_up
    from newsletter.models import Edition

    warm_up(runtime.sessions, Sender(runtime.settings))  # a fresh install: nothing to render
    with runtime.session() as session:
        session.add(Edition(week="2031-W01", languages=["en"]))  # no articles yet
    with caplog.at_level("INFO"):
        warm_up(runtime.sessions, Sender(runtime.settings))
    assert "warm-up rendered no variant of 2031-W01" in caplog.text

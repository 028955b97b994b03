"""Message-IDs on SQLite and PostgreSQL: each reader's is a sealed token that names them and
nobody else, the same on every copy of one delivery; what comes back quoting one is attributed
to its reader, and a reader who knows their own cannot make one that names a neighbour."""

from __future__ import annotations

import email
import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from newsletter import bounce_policy, dispatch
from newsletter.config import Settings
from newsletter.dispatch import store
from newsletter.dispatch.sending import Sender, send_batch
from newsletter.editions import import_edition_file
from newsletter.message_ids import read_message_id
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    InboundMessage,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from newsletter.paths import sample_data_dir
from newsletter.runtime import Runtime
from newsletter.tokens import TokenSigner, make_message_id_token
from newsletter.transport import make_transport

S = SubscriberStatus
FIXTURES = Path(__file__).parent / "fixtures"
INBOUND = "inbound@news.example.org"
WEEK = "2020-W05"
MESSAGE_ID_RE = re.compile(r"^<([0-9a-f]{58})@news\.example\.org>$")
CREATED = datetime(2021, 3, 4, 10, 30, tzinfo=UTC)  # the edition's creation: the ids' issue day
# Large explicit subscriber ids, one after the other, so that "in clear" can be looked for.
IDS = {"alice@example.net": 7_340_033, "boris@example.net": 7_340_034}


def take(session: Session, settings: Settings, raw: bytes) -> bounce_policy.Outcome:
    """Store and process one message that came to the bare inbound address."""
    row = bounce_policy.store(
        session, settings, raw, recipient=INBOUND, mail_from="", channel="smtp"
    )
    return bounce_policy.process(session, settings, TokenSigner(settings.secret_key), row.id)


def send_edition(runtime: Runtime) -> None:
    """Start the send and tick until it is done, as beat would."""
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=runtime.jobs)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with runtime.session() as session:
            dispatch.tick(session, runtime.settings, runtime.jobs, idle_after=0)
            if dispatch.progress(session, WEEK).status is not EditionStatus.sending:
                return
        time.sleep(0.2)
    raise AssertionError(f"{WEEK} still sending")


def sent_edition(settings: Settings, engine: Engine, smtp_server) -> tuple[Runtime, dict[str, str]]:  # type: ignore[no-untyped-def]
    """The sample edition (created on CREATED) sent to Alice and Boris through the SMTP test
    server; returns the runtime and each reader's Message-ID as the server received it."""
    url, handler = smtp_server
    runtime = Runtime(replace(settings, smtp_url=url, inbound_address=INBOUND), _engine=engine)
    with runtime.session() as session:
        import_edition_file(session, sample_data_dir() / f"{WEEK}.yaml")
        session.execute(update(Edition).values(created_at=CREATED))
        for address, subscriber_id in IDS.items():
            session.add(
                Subscriber(id=subscriber_id, email=address, languages="en", status=S.active)
            )
    send_edition(runtime)
    received = handler.by_recipient()
    assert sorted(received) == sorted(IDS)
    return runtime, {
        rcpt: email.message_from_bytes(copies[0], policy=default_policy)["Message-ID"]
        for rcpt, copies in received.items()
    }


def test_each_readers_message_id_is_a_sealed_token_of_them(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, smtp_server
) -> None:
    """Scenario: two readers, consecutive ids, get one edition. Their Message-IDs share nothing
    but the token's clear version byte, name no id in any spelling, are read back with the key
    (reader, edition, the edition's creation day) and with no other key; nothing is stored."""
    runtime, ids = sent_edition(settings, engine, smtp_server)
    with runtime.session() as session:
        edition_id = session.scalars(select(Edition.id)).one()
        deliveries = dict(session.execute(select(Delivery.subscriber_id, Delivery.id)).all())
        stored = session.scalars(select(Delivery.message_id)).all()
    assert stored == [None, None]  # the hot UPDATE writes no per-row Message-ID any more
    tokens = {}
    for rcpt, message_id in ids.items():
        match = MESSAGE_ID_RE.match(message_id)
        assert match is not None, message_id
        tokens[rcpt] = match.group(1)
        data = read_message_id(runtime.sender.signer, message_id)
        assert data is not None
        assert (data.subscriber_id, data.edition_id) == (IDS[rcpt], edition_id)
        assert data.issued_at.date() == CREATED.date()  # not the sending day
        assert read_message_id(TokenSigner("another key"), message_id) is None
        # In clear: not the subscriber id in decimal or hex, no id's bytes in the token.
        assert str(IDS[rcpt]) not in message_id and f"{IDS[rcpt]:x}" not in message_id
        raw = bytes.fromhex(tokens[rcpt])
        for number in (IDS[rcpt], deliveries[IDS[rcpt]], edition_id, edition_id + 1):
            for size in (4, 6, 8):
                assert number.to_bytes(size, "big") not in raw, (number, size)
    alice, boris = tokens["alice@example.net"], tokens["boris@example.net"]
    assert alice[:2] == boris[:2]  # byte 0, version and purpose, is in clear
    assert longest_common_substring(alice[2:], boris[2:]) < 8  # 32 bits: by chance ~1e-6


def longest_common_substring(a: str, b: str) -> int:
    best = 0
    for i in range(len(a)):
        for j in range(len(b)):
            n = 0
            while i + n < len(a) and j + n < len(b) and a[i + n] == b[j + n]:
                n += 1
            best = max(best, n)
    return best


def test_a_copy_sent_again_after_a_crash_has_the_same_message_id(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, smtp_server
) -> None:
    """Scenario: a worker dies after the server took Alice's message but before writing it
    down; three days later a fresh process sends her delivery again: the same Message-ID, so
    her mail client shows one message."""
    runtime, ids = sent_edition(settings, engine, smtp_server)
    _, handler = smtp_server
    alice = IDS["alice@example.net"]
    later = utcnow() + timedelta(days=3)
    with runtime.session() as session:
        edition_id = session.scalars(select(Edition.id)).one()
        session.execute(
            update(Delivery)
            .where(Delivery.subscriber_id == alice)
            .values(status=DeliveryStatus.sending, claimed_at=utcnow() - timedelta(hours=1))
        )
        assert store.requeue_stale(session, edition_id, utcnow(), runtime.settings.max_attempts)
    handler.messages.clear()
    report = send_batch(
        runtime.sessions,
        runtime.settings,
        make_transport(runtime.settings),
        edition_id=edition_id,
        first_id=0,
        now=lambda: later,
        sender=Sender(runtime.settings),  # a fresh process: nothing cached from the first send
    )
    assert report.sent == 1
    again = handler.by_recipient()
    assert list(again) == ["alice@example.net"]
    copy = email.message_from_bytes(again["alice@example.net"][0], policy=default_policy)
    assert copy["Message-ID"] == ids["alice@example.net"]


def test_a_complaint_quoting_a_sent_message_id_is_attributed_to_its_reader(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, smtp_server
) -> None:
    """Scenario: a feedback loop reports Alice's message with the recipient and the return
    path redacted: only the Message-ID the server received names her. She is complained;
    Boris is untouched; a bounce of her message that names Boris attributes nothing."""
    runtime, ids = sent_edition(settings, engine, smtp_server)
    inbound = runtime.settings
    complaint = arf(ids["alice@example.net"], rcpt=None)
    forwarded = arf(ids["alice@example.net"], rcpt="boris@example.net")
    with runtime.session() as session:
        outcome = take(session, inbound, complaint)
        assert (outcome.subscriber_id, outcome.status) == (IDS["alice@example.net"], S.complained)
        row = session.get_one(InboundMessage, outcome.inbound_id)
        assert row.attributed_by == "message-id"
        assert take(session, inbound, forwarded).subscriber_id is None
        status = dict(session.execute(select(Subscriber.email, Subscriber.status)).all())
    assert status == {"alice@example.net": S.complained, "boris@example.net": S.active}


def arf(message_id: str, *, rcpt: str | None) -> bytes:
    """An ARF abuse report about one message, its return path not ours; rcpt None: the
    recipient redacted, as feedback loops do."""
    values = {"to": INBOUND, "rcpt": rcpt or "", "return_path": "x@example.com"}
    text = (FIXTURES / "arf_abuse.eml").read_text() % {**values, "message_id": message_id}
    if rcpt is None:
        text = text.replace("Original-Rcpt-To: <>\n", "")
    return text.replace("\n", "\r\n").encode()


@pytest.mark.parametrize("fixture", ["arf_abuse.eml", "autoreply.eml"])
def test_a_reader_cannot_make_a_message_id_that_names_a_neighbour(  # type: ignore[no-untyped-def]
    session, settings, readers, fixture
) -> None:
    """Scenario: Mallory got W04 (old Message-IDs, <delivery id.edition tag@host>) and W05
    (tokens), as did three neighbours. She sends complaints and auto-replies naming no
    recipient, or herself, quoting every old id of W04 (her tag, each delivery id) and the
    new ones she can make: hers with a character changed, her return path's token, tokens
    made with a guessed key, the token layout in clear. Nobody is attributed anything; her
    own genuine Message-ID is."""
    w04, w05 = readers.edition("2020-W04"), readers.edition("2020-W05")
    people = {n: readers.reader(f"{n}@example.net") for n in ("mallory", "anna", "boris", "vera")}
    old = {n: readers.sent(i, w04, legacy=True) for n, i in people.items()}
    new = {n: readers.sent(i, w05) for n, i in people.items()}
    mallory = new["mallory"]
    tag = old["mallory"].message_id.split(".", 1)[1]  # "<edition tag>@news.example.org>"
    top = max(s.delivery_id for s in [*old.values(), *new.values()])
    # Her own old id named with her address is hers: a genuine report, not a forgery.
    forged = [f"<{n}.{tag}" for n in range(1, top + 20) if n != old["mallory"].delivery_id]
    match = MESSAGE_ID_RE.match(mallory.message_id)
    assert match is not None
    own = match.group(1)
    for i, char in enumerate(own):
        forged.append(f"<{own[:i]}{'b' if char == 'a' else 'a'}{own[i + 1 :]}@news.example.org>")
    forged.append(f"<{mallory.return_path.split('+')[1].split('@')[0]}@news.example.org>")
    edition = session.get_one(Edition, w05)
    guessed = TokenSigner("a guessed key")
    for subscriber_id in people.values():
        salt = session.get_one(Subscriber, subscriber_id).link_salt  # even knowing the salt
        token = make_message_id_token(
            guessed, subscriber_id, w05, salt=salt, issued=edition.created_at
        )
        clear = (
            bytes([0x35, *bytes(10)])
            + subscriber_id.to_bytes(6, "big")
            + (w05 + 1).to_bytes(4, "big")
            + bytes(2)
            + salt.to_bytes(6, "big")
        )
        forged.append(f"<{token}@news.example.org>")
        forged.append(f"<{clear.hex()}@news.example.org>")

    redacted = f"Original-Rcpt-To: <{mallory.email}>\r\n".encode()
    for message_id in forged:
        raw = mallory.fill(fixture, message_id=message_id, return_path="x@example.com")
        for report in (raw, raw.replace(redacted, b"")):
            assert take(session, settings, report).subscriber_id is None, message_id
    assert session.scalars(select(InboundMessage.subscriber_id).distinct()).all() == [None]
    assert set(session.scalars(select(Subscriber.status))) == {S.active}

    genuine = mallory.fill(fixture, return_path="x@example.com").replace(redacted, b"")
    assert take(session, settings, genuine).subscriber_id == people["mallory"]

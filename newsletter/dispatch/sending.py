"""Sending one batch: claim, substitute into prepared variants, send, record in bulk.

This loop is the one place that commits as it goes: progress is its job. Each stretch of
FLUSH_EVERY messages is recorded in a few set-based statements right after the server
answered, so a crash can repeat at most that stretch (see README, "crash window"). While the
batch runs, a ClaimKeeper renews its claims by time, and results wait for an unreachable
database rather than being lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from newsletter import links
from newsletter.config import Settings
from newsletter.db import is_postgresql
from newsletter.dispatch import store
from newsletter.dispatch.keeper import ClaimKeeper, patiently
from newsletter.dispatch.store import Claim, Outcomes
from newsletter.errors import EditionIncomplete, NewsletterError
from newsletter.message_ids import message_id_domain, message_id_maker
from newsletter.models import Edition, EditionStatus, utcnow
from newsletter.returnpath import InboundAddress
from newsletter.transport import Item, Outcome, SendResult, Transport

if TYPE_CHECKING:
    from newsletter.messages import MessageTemplate
    from newsletter.tokens import TokenSigner

log = logging.getLogger(__name__)

CLAIM_SIZE = 100  # deliveries taken per claim; pause and cancel are honoured between claims
SENDS = (EditionStatus.sending, EditionStatus.sent)  # the states in which batches send
FLUSH_EVERY = 50  # messages sent between two progress writes: the crash window per worker
# A batch's claims are renewed, and the edition touched, this often (in units of
# settings.stale_after), by time, from the keeper's thread: often enough for the tick never
# to take a live worker for a dead one, rarely enough to cost nothing per message.
HEARTBEAT_SHARE = 0.1


# Read before every claim: a plain SELECT built once, not an ORM query.
_EDITION_STATE = select(store.E.c.status, store.E.c.week, store.E.c.created_at).where(
    store.E.c.id == bindparam("edition_id")
)


@dataclass
class BatchReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    bounced: int = 0
    finished: bool = False  # this batch completed the edition
    retry_in: float | None = None  # seconds until a postponed delivery of the batch is due
    paused: str | None = None  # why this batch paused the edition (not the readers' fault)

    def add(self, outcomes: Outcomes) -> None:
        self.sent += len(outcomes.sent)
        self.skipped += len(outcomes.skipped)
        self.failed += sum(map(len, outcomes.failed.values()))
        self.retried += sum(map(len, outcomes.retry.values()))
        self.bounced += len(outcomes.bounced)


class Pacer:
    """Keeps a process at or under `rate` messages per second (None: no cap); thread-safe."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = time.monotonic()
        self._lock = threading.Lock()

    def chunk(self, default: int) -> int:
        # Under a cap, send about a second's worth between two progress writes.
        return max(1, min(default, int(1.0 / self.interval))) if self.interval else default

    def wait(self, count: int) -> None:
        """Sleep until `count` more messages may leave, and book their time."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(self.next_at, now)
            self.next_at = start + count * self.interval
        if start > now:
            time.sleep(start - now)


def envelope_senders(
    settings: Settings, edition_id: int, signer: TokenSigner
) -> Callable[[Claim], str] | None:
    """The hook for a per-message envelope sender (VERP): a function giving each claimed
    reader's MAIL FROM, inbound+<token>@host, or None (no NEWSLETTER_INBOUND_ADDRESS) for
    NEWSLETTER_FROM's address on every message."""
    address = InboundAddress.of(settings)
    if address is None:
        return None

    def sender(c: Claim) -> str:
        return address.return_path(signer, c.subscriber_id, edition_id, salt=c.link_salt)

    return sender


def unsubscribe_mailtos(
    settings: Settings, edition_id: int, signer: TokenSigner
) -> Callable[[Claim], str] | None:
    """Each reader's List-Unsubscribe mailto address, or None without an inbound address."""
    address = InboundAddress.of(settings)
    if address is None:
        return None

    def mailto(c: Claim) -> str:
        return address.unsubscribe_address(signer, c.subscriber_id, edition_id, salt=c.link_salt)

    return mailto


class Sender:
    """The send engine of one process, built once at the composition root (Runtime.sender)
    and shared by its threads: the prepared variants, the pacer (the rate limit holds across
    the batches the process runs), the token signer and the Message-ID domain."""

    KEEP_EDITIONS = 2  # editions whose variants stay prepared: memory stays flat

    def __init__(self, settings: Settings) -> None:
        from newsletter.tokens import TokenSigner

        self.settings = settings
        self.signer = TokenSigner(settings.secret_key)
        self.pacer = Pacer(settings.rate_limit)
        self.domain = message_id_domain(settings)
        # edition key -> language set -> the variant prepared once in this process
        self._variants: dict[tuple[Any, ...], dict[tuple[str, ...], MessageTemplate]] = {}
        self._lock = threading.Lock()

    def message_ids(self, edition_id: int, created_at: datetime) -> Callable[[int, int], str]:
        """(subscriber id, link salt) -> the Message-ID of their copy of this edition: a token
        issued at the edition's creation, so a copy sent again has the same one."""
        return message_id_maker(self.signer, self.domain, edition_id, created_at)

    def prepared(self, edition_key: tuple[Any, ...]) -> set[str]:
        """The language sets ("be,ru") whose variants of this edition are ready."""
        with self._lock:
            return {",".join(langs) for langs in self._variants.get(edition_key, {})}

    def variants_for(
        self,
        sessions: sessionmaker[Session],
        edition_key: tuple[Any, ...],
        sets: set[tuple[str, ...]],
    ) -> dict[tuple[str, ...], MessageTemplate]:
        """Each language set is rendered and inlined once per process, then only substituted.

        `edition_key` names the edition and the settings it is rendered with. One thread
        renders what is missing while the others wait for it, never twice.
        """
        with self._lock:
            prepared = self._variants.pop(edition_key, None) or {}
            self._variants[edition_key] = prepared  # the most recent last
            while len(self._variants) > self.KEEP_EDITIONS:
                del self._variants[next(iter(self._variants))]
            missing = sets - prepared.keys()
            if missing:
                from newsletter.messages import prepare_edition_messages

                with sessions() as session:
                    edition = session.get(Edition, edition_key[0])
                    assert edition is not None
                    made = prepare_edition_messages(
                        session,
                        self.settings,
                        edition,
                        sorted(missing),
                        fallback_language=edition.fallback_language,
                    )
                for langs, template in made.items():
                    prepared[tuple(langs)] = template
            return {s: prepared[s] for s in sets}


def warm_up(sessions: sessionmaker[Session], sender: Sender) -> None:
    """Ready before the first batch: the mappers configured, the send path's statements run
    once against nothing (SQLAlchemy compiles and caches each on first use), and the newest
    edition's first variant prepared through its relationships. At 10,000 readers this
    one-time work was a fifth of a worker's first batch."""
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    now = utcnow()
    nothing = Outcomes(sent=[], skipped=[-1])
    with sessions() as session:
        session.execute(_EDITION_STATE, {"edition_id": -1}).first()
        store.claim(session, -1, 0, None, 1, now)
        store.still_held(session, {-1: 0})
        store.record(session, -1, nothing, {-1: 0}, now=now, retry_backoff=1.0, max_attempts=1)
        session.execute(store._mark_sent_statement(is_postgresql(session)), {"ids": [], "now": now})
        store.renew(session, {-1: 0}, now)
        session.rollback()
        edition = session.scalar(select(Edition).order_by(Edition.id.desc()).limit(1))
        if edition is None:
            return
        key = (edition.id, edition.week, edition.created_at, sender.settings)
        languages = (edition.languages or ["en"])[:1]
    try:
        sender.variants_for(sessions, key, {tuple(languages)})
    except NewsletterError as exc:  # e.g. a draft still being written: nothing to warm with
        log.info("warm-up rendered no variant of %s: %s", edition.week, exc)


def send_batch(
    sessions: sessionmaker[Session],
    settings: Settings,
    transport: Transport,
    *,
    edition_id: int,
    first_id: int,
    last_id: int | None = None,
    now: Callable[[], datetime] = utcnow,
    sender: Sender | None = None,
) -> BatchReport:
    """Send the queued deliveries of one id range while the edition is sending, with the
    process's `sender` (a fresh one, with cold caches, when none is given)."""
    report = BatchReport()
    sender = sender or Sender(settings)
    edition_key: tuple[Any, ...] | None = None
    keeper = ClaimKeeper(sessions, edition_id, settings.stale_after * HEARTBEAT_SHARE, now)
    try:
        with keeper:
            while True:
                state = patiently(
                    sessions,
                    lambda s: _next_claim(s, edition_id, first_id, last_id, now()),
                    max_delay=keeper.every,
                    what="a claim",
                )
                if state is None:
                    break
                edition, claims = state
                edition_key = edition_key or (
                    edition_id,
                    edition.week,
                    edition.created_at,
                    settings,
                )
                if not claims:
                    break
                _send_claims(
                    sessions, settings, transport, edition_key, claims, report, sender, now, keeper
                )
    finally:
        transport.close()
    with sessions.begin() as session:
        report.finished = store.finish_if_done(session, edition_id, now())
        if not report.finished and _status(session, edition_id) in SENDS:
            due = store.next_due(session, edition_id, first_id, last_id)
            if due is not None:
                report.retry_in = max(0.0, (due - now()).total_seconds())
    return report


def _next_claim(
    session: Session, edition_id: int, first_id: int, last_id: int | None, at: datetime
) -> tuple[Any, list[Claim]] | None:
    """The edition's state and the next claim, or None when the edition does not send."""
    edition = session.execute(_EDITION_STATE, {"edition_id": edition_id}).first()
    # A sent edition still sends its late deliveries (a new reader's welcome).
    if edition is None or edition.status not in SENDS:
        return None
    return edition, store.claim(session, edition_id, first_id, last_id, CLAIM_SIZE, at)


def _status(session: Session, edition_id: int) -> EditionStatus | None:
    edition = session.get(Edition, edition_id, populate_existing=True)
    return edition.status if edition else None


def _send_claims(
    sessions: sessionmaker[Session],
    settings: Settings,
    transport: Transport,
    edition_key: tuple[Any, ...],
    claims: Sequence[Claim],
    report: BatchReport,
    sender: Sender,
    now: Callable[[], datetime],
    keeper: ClaimKeeper,
) -> None:
    # Grouped by language set: a stretch needs few variants, so a fresh worker's first
    # message waits for the rendering of one or two of them, not of all fifteen.
    active = sorted((c for c in claims if c.active), key=lambda c: c.languages)
    tokens = {c.delivery_id: c.attempts for c in claims}
    outcomes = Outcomes(skipped=[c.delivery_id for c in claims if not c.active])
    keeper.hold({c.delivery_id: c.attempts for c in active})
    edition_id = edition_key[0]
    from newsletter.messages import Recipient

    signer = sender.signer
    pacer = sender.pacer
    # Read once per claim, kept up to date below: the key hashes the settings.
    ready = sender.prepared(edition_key)
    unsubscribe_token = signer.maker(_unsubscribe_purpose(), edition_id)
    # Issued at the edition's creation (edition_key: id, week, created_at, settings).
    message_id = sender.message_ids(edition_id, edition_key[2])
    envelope_from = parseaddr(settings.from_address)[1]
    own_sender = envelope_senders(settings, edition_id, signer)
    mailto = unsubscribe_mailtos(settings, edition_id, signer)
    base_url = settings.base_url
    dot_stuffed = transport.dot_stuffed
    step = pacer.chunk(FLUSH_EVERY)
    # The deliveries still held, each with whether its reader is active, by a read with
    # nothing slow since: the claim's own, then the one that ends each write of results (the
    # same transaction: no round trip of its own).
    held: dict[int, bool] | None = dict.fromkeys((c.delivery_id for c in active), True)
    for start, chunk in _stretches(active, step, ready.__contains__):
        languages = {c.languages for c in chunk}
        if not languages <= ready:
            held = None  # rendering takes a while: read again after it
        try:
            variants = sender.variants_for(
                sessions, edition_key, {tuple(la.split(",")) for la in languages}
            )
            ready |= languages
            templates = {la: variants[tuple(la.split(","))] for la in languages}
        except EditionIncomplete as exc:
            rest = {c.delivery_id: c.attempts for c in active[start:]}
            keeper.let_go(rest)
            with sessions.begin() as session:
                if _status(session, edition_id) is EditionStatus.sent:
                    # A new reader's welcome of an edition edited since it went out: there is
                    # no send to pause, and handing it back would have the tick retry forever.
                    store.give_up(session, rest, f"not sent: the edition changed since: {exc}")
                else:
                    # Edited into an unsendable state mid-send: the rest waits for staff.
                    store.release(session, rest)
                    store.hold(session, edition_id, str(exc), now())
            break
        pacer.wait(len(chunk))
        # Honoured before the next message leaves: whoever unsubscribed, was erased or
        # bounced since the claim is skipped, and a delivery whose claim was taken (this
        # worker was away longer than the tick waits) is left to its new holder. One
        # set-based SELECT per stretch: at the end of the previous stretch's write when the
        # stretch follows at once, or here, after the rate limit's wait or a rendering, right
        # before the stretch goes on the wire.
        ids = [c.delivery_id for c in chunk]
        if held is None or pacer.interval:
            held = patiently(
                sessions,
                partial(store.still_held, tokens={i: tokens[i] for i in ids}),
                max_delay=keeper.every,
            )
        if any(held.get(i) is not True for i in ids):
            taken = [i for i in ids if i not in held]
            if taken:
                log.warning(
                    "%d claims were taken from this worker: left to their holder", len(taken)
                )
            outcomes.skipped.extend(i for i in ids if held.get(i) is False)
            chunk = [c for c in chunk if held.get(c.delivery_id)]
        batch: list[Item] = []
        for c in chunk:
            template = templates[c.languages]
            token = unsubscribe_token(c.subscriber_id, c.link_salt)
            recipient = Recipient(
                email=c.email,
                name=c.name,
                unsubscribe_url=links.unsubscribe_url(base_url, token),
                message_id=message_id(c.subscriber_id, c.link_salt),
                unsubscribe_mailto=mailto(c) if mailto else None,
            )
            render = template.render_smtp_parts if dot_stuffed else template.render
            if own_sender is None:
                batch.append((c.email, render(recipient)))
            else:
                batch.append((c.email, render(recipient), own_sender(c)))
        if batch:
            _collect(outcomes, chunk, transport.send(envelope_from, batch), settings.max_attempts)
        # The keeper stops renewing these before they are written: it never waits on the
        # rows the write holds, and the write never waits on it.
        keeper.let_go(ids)
        following = {c.delivery_id: c.attempts for c in active[start + len(ids) :]}
        held = _flush(sessions, settings, edition_id, outcomes, tokens, now, following)
        report.add(outcomes)
        if outcomes.held:  # the edition is paused: hand the rest of the claim back untried
            keeper.let_go(following)
            patiently(sessions, partial(store.release, tokens=following), max_delay=keeper.every)
            report.paused = outcomes.hold_reason
            return
        outcomes = Outcomes()
    if outcomes.skipped:  # nobody in the claim was active
        _flush(sessions, settings, edition_id, outcomes, tokens, now)
        report.add(outcomes)


def _stretches(
    claims: Sequence[Claim], step: int, is_prepared: Callable[[str], bool]
) -> Iterator[tuple[int, Sequence[Claim]]]:
    """Cut claims sorted by language set into stretches of at most `step` (with where each
    starts). A stretch ends before a language set whose variant is not prepared yet, so what
    can leave does, while the rest is rendered one variant at a time."""
    start = 0
    while start < len(claims):
        end = start + 1
        while end < len(claims) and end - start < step:
            languages = claims[end].languages
            if languages != claims[end - 1].languages and not is_prepared(languages):
                break
            end += 1
        yield start, claims[start:end]
        start = end


def _collect(
    outcomes: Outcomes, chunk: Sequence[Claim], results: Sequence[SendResult], max_attempts: int
) -> None:
    for c, result in zip(chunk, results, strict=True):
        if result.outcome is Outcome.ok:
            outcomes.sent.append(c.delivery_id)
        elif result.blocked and (result.outcome is Outcome.permanent or c.attempts >= max_attempts):
            # Not the reader's fault: nobody is marked failed, the edition pauses instead.
            outcomes.held.append(c.delivery_id)
            if outcomes.hold_reason is None:
                outcomes.hold_reason = (
                    result.reply
                    if result.outcome is Outcome.permanent
                    else f"the relay was unreachable after {c.attempts} attempts: {result.reply}"
                )
        elif result.outcome is Outcome.permanent:
            outcomes.failed.setdefault(result.reply, []).append(c.delivery_id)
            if result.bounce:
                outcomes.bounced.append(c.subscriber_id)
        else:
            outcomes.retry.setdefault((c.attempts, result.reply), []).append(c.delivery_id)


def _flush(
    sessions: sessionmaker[Session],
    settings: Settings,
    edition_id: int,
    outcomes: Outcomes,
    tokens: store.Tokens,
    now: Callable[[], datetime],
    following: store.Tokens | None = None,
) -> dict[int, bool] | None:
    """Write a stretch's results; while the database is away they wait here, in memory.
    Returns which of the `following` deliveries are still held, and whether their readers
    are active, read in the same transaction (None when there are none)."""

    def write(session: Session) -> dict[int, bool] | None:
        store.record(
            session,
            edition_id,
            outcomes,
            tokens,
            now=now(),
            retry_backoff=settings.retry_backoff,
            max_attempts=settings.max_attempts,
        )
        if outcomes.bounced:
            from newsletter.subscriptions import mark_bounced

            mark_bounced(session, outcomes.bounced, edition_id=edition_id, detail="hard bounce")
        return store.still_held(session, following) if following else None

    # Tried again at least as often as claims are renewed: once the database is back, the
    # results are in before the tick can see these claims stale twice.
    every = settings.stale_after * HEARTBEAT_SHARE
    return patiently(sessions, write, max_delay=every, what="the results of a stretch")


def _unsubscribe_purpose() -> Any:
    from newsletter.tokens import TokenPurpose

    return TokenPurpose.unsubscribe

"""Rate limits for the subscribe form and the slow-down of password guessing.

The counts are shared by every `newsletter serve` process, never kept in one process's
memory: in Redis when the broker URL names one, else in the database (table `rate_counts`).
Keys are keyed hashes: neither store holds an IP or an address in clear.

    Limit          at most `count` events per window of `seconds`
    CounterStore   one windowed count per key: add, peek, clear (RedisCounts, SqlCounts)
    RateLimiter    hit(kind, value, limit): count an attempt, say whether it is allowed
    LoginThrottle  waits that double with each failure of one account from one source
    client_key     the source an IP stands for: IPv6 clients by their /64
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Engine, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from newsletter.models import RateCount

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """At most `count` attempts per `seconds`."""

    count: int
    seconds: int


@dataclass
class SubscribeLimits:
    per_ip: Limit = Limit(10, 3600)
    per_address: Limit = Limit(3, 3600)
    # Confirmation emails to one address, whatever the source: a stranger cannot flood it.
    confirmations: Limit = Limit(1, 86400)


class Count(NamedTuple):
    events: int
    last_at: float  # seconds since the epoch of the latest event; 0 when none


class CounterStore(Protocol):
    def add(self, key: str, seconds: int) -> Count:
        """Count one event; a window opens at the first event and lasts `seconds`."""

    def peek(self, key: str) -> Count:
        """The count of the open window, without adding to it."""

    def clear(self, key: str) -> None:
        """Forget the key's window."""


class SqlCounts:
    """Counts in the `rate_counts` table, one upsert per event (SQLite and PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert: Any = (
            postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        )

    def add(self, key: str, seconds: int) -> Count:
        now = time.time()
        table = RateCount.__table__
        expired = table.c.expires_at <= now
        stmt = (
            self._insert(table)
            .values(key=key, count=1, expires_at=now + seconds, last_at=now)
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "count": case((expired, 1), else_=table.c.count + 1),
                    "expires_at": case((expired, now + seconds), else_=table.c.expires_at),
                    "last_at": now,
                },
            )
            .returning(table.c.count)
        )
        # Its own short transaction: the count holds even if the request then fails.
        with self._engine.begin() as conn:
            count = int(conn.execute(stmt).scalar_one())
            if random.random() < 0.01:  # now and then, drop windows that have closed
                conn.execute(delete(table).where(table.c.expires_at < now))
        return Count(count, now)

    def peek(self, key: str) -> Count:
        table = RateCount.__table__
        query = select(table.c.count, table.c.last_at).where(
            table.c.key == key, table.c.expires_at > time.time()
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        # A column named "count" is shadowed by the Row's tuple method: read by position.
        return Count(int(row[0]), float(row[1])) if row else Count(0, 0.0)

    def clear(self, key: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(RateCount.__table__).where(RateCount.__table__.c.key == key))


class RedisCounts:
    """Counts in Redis (a key per window with its expiry). Redis down: everything allowed."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix

    def add(self, key: str, seconds: int) -> Count:
        name, now = self._prefix + key, time.time()
        try:
            pipe = self._redis.pipeline()
            pipe.set(name, 0, ex=seconds, nx=True)
            pipe.incr(name)
            pipe.set(name + ":last", now, ex=seconds)
            count = int(pipe.execute()[1])
        except Exception as exc:  # let people subscribe and log in rather than fail them
            log.warning("rate limiter unavailable, allowing: %s", exc)
            return Count(0, 0.0)
        return Count(count, now)

    def peek(self, key: str) -> Count:
        name = self._prefix + key
        try:
            count, last = self._redis.mget(name, name + ":last")
        except Exception as exc:
            log.warning("rate limiter unavailable, allowing: %s", exc)
            return Count(0, 0.0)
        return Count(int(count or 0), float(last or 0))

    def clear(self, key: str) -> None:
        try:
            self._redis.delete(self._prefix + key, self._prefix + key + ":last")
        except Exception as exc:
            log.warning("rate limiter unavailable: %s", exc)


def make_counter_store(broker_url: str | None, database_url: str, engine: Engine) -> CounterStore:
    """Redis when the broker is Redis, else the database; never one process's memory."""
    if broker_url and broker_url.startswith(("redis://", "rediss://", "unix://")):
        # Installations sharing one Redis keep their counts apart.
        tag = hashlib.sha256(database_url.encode()).hexdigest()[:12]
        return RedisCounts(broker_url, f"newsletter:ratelimit:{tag}:")
    return SqlCounts(engine)


def limiter_key(secret_key: str, kind: str, value: str) -> str:
    """A keyed hash, so the limiter's store holds no IP or address in clear."""
    digest = hmac.new(secret_key.encode(), f"{kind}\0{value}".encode(), hashlib.sha256)
    return f"{kind}:{digest.hexdigest()[:32]}"


def client_key(host: str | None) -> str:
    """The source a client address stands for: an IPv6 client owns its whole /64."""
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return (host or "unknown")[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class RateLimiter:
    """Counts attempts per (kind, value) over a store shared by every process."""

    def __init__(self, store: CounterStore, secret_key: str) -> None:
        self._store = store
        self._secret = secret_key

    def hit(self, kind: str, value: str, limit: Limit) -> bool:
        """Count one attempt; False when the limit is already reached."""
        key = f"{limiter_key(self._secret, kind, value)}:{limit.seconds}"
        return self._store.add(key, limit.seconds).events <= limit.count


@dataclass(frozen=True)
class LoginPolicy:
    """Free failures, then waits doubling from `first_wait` to `max_wait` seconds."""

    free_per_account: int = 5  # for one account from one source
    free_per_source: int = 30  # for any accounts from one source
    first_wait: float = 1.0
    max_wait: float = 300.0
    window: int = 3600  # failures older than this are forgotten


class LoginThrottle:
    """Slows down password guessing, never locks an account.

    Failures are counted per (account, source) and per source. Nothing is counted per
    account alone: a stranger guessing from many addresses slows only their own sources,
    never the staff member logging in from theirs.
    """

    def __init__(self, store: CounterStore, secret_key: str, policy: LoginPolicy) -> None:
        self._store = store
        self._secret = secret_key
        self.policy = policy

    def _keys(self, account: str, source: str) -> list[tuple[str, int]]:
        pair = f"{account.strip().lower()}\0{source}"
        return [
            (limiter_key(self._secret, "login", pair), self.policy.free_per_account),
            (limiter_key(self._secret, "login-source", source), self.policy.free_per_source),
        ]

    def wait(self, account: str, source: str) -> float:
        """Seconds before this source may try this account again; 0 means now."""
        now, wait = time.time(), 0.0
        for key, free in self._keys(account, source):
            count, last_at = self._store.peek(key)
            if count >= free:
                doubling = 2.0 ** min(count - free, 30)
                delay = min(self.policy.first_wait * doubling, self.policy.max_wait)
                wait = max(wait, last_at + delay - now)
        return wait

    def failed(self, account: str, source: str) -> None:
        for key, _free in self._keys(account, source):
            self._store.add(key, self.policy.window)

    def succeeded(self, account: str, source: str) -> None:
        """The right password from this source: its waits for this account end."""
        self._store.clear(self._keys(account, source)[0][0])


def shared_counts(state: Any) -> CounterStore:
    """The app's one counter store (built at the first call, kept on the app's state)."""
    store: CounterStore | None = getattr(state, "counter_store", None)
    if store is None:
        runtime = state.runtime
        settings = runtime.settings
        store = make_counter_store(settings.broker_url, settings.database_url, runtime.engine)
        state.counter_store = store
    return store

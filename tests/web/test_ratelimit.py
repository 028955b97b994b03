"""The limiter's counts: shared by every web process, in the database or in Redis."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from sqlalchemy import Engine, select

from newsletter.db import make_engine
from newsletter.models import RateCount
from newsletter.web.ratelimit import (
    Limit,
    LoginPolicy,
    LoginThrottle,
    RateLimiter,
    RedisCounts,
    SqlCounts,
    client_key,
    limiter_key,
    make_counter_store,
)

REDIS_URL = "redis://127.0.0.1:6379/14"


def test_database_counts_are_shared_between_processes(engine: Engine, db_url: str) -> None:
    """Scenario: two web processes (two connection pools) share each count through the database."""
    other = make_engine(db_url)
    try:
        first = RateLimiter(SqlCounts(engine), "secret")
        second = RateLimiter(SqlCounts(other), "secret")
        limit = Limit(3, 60)
        hits = [
            first.hit("address", "a@example.org", limit),
            second.hit("address", "a@example.org", limit),
        ]
        hits.append(first.hit("address", "a@example.org", limit))
        assert hits == [True] * 3
        assert not second.hit("address", "a@example.org", limit)
        assert second.hit("address", "b@example.org", limit)  # each key on its own
    finally:
        other.dispose()
    with engine.connect() as conn:
        keys = list(conn.scalars(select(RateCount.key)))
    assert keys and all("example.org" not in k for k in keys)  # only keyed hashes


def test_database_window_closes(engine: Engine) -> None:
    """Scenario: once a window has passed, the key starts counting from one again."""
    counts = SqlCounts(engine)
    assert [counts.add("k", 1).events for _ in range(3)] == [1, 2, 3]
    assert counts.peek("k").events == 3
    time.sleep(1.1)
    assert counts.peek("k").events == 0
    assert counts.add("k", 1).events == 1


def test_redis_counts_are_shared_between_processes() -> None:
    """Scenario: two web processes behind one balancer share the count through Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("the Redis on 127.0.0.1:6379 is down")
    prefix = f"test:{uuid.uuid4().hex}:"  # other test runs share this Redis
    first = RateLimiter(RedisCounts(REDIS_URL, prefix), "secret")
    second = RateLimiter(RedisCounts(REDIS_URL, prefix), "secret")
    limit = Limit(3, 60)
    hits = [
        second.hit("address", "a@example.org", limit)
        if i % 2
        else first.hit("address", "a@example.org", limit)
        for i in range(3)
    ]
    assert hits == [True] * 3
    assert not second.hit("address", "a@example.org", limit)
    stored = [k.decode() for k in client.scan_iter(prefix + "*")]
    assert stored and all("a@example.org" not in k for k in stored)  # only keyed hashes
    assert all(client.ttl(k) > 0 for k in stored)  # and they expire
    client.delete(*stored)


def test_redis_down_lets_people_in() -> None:
    """Scenario: Redis is unreachable: the form and the login stay open rather than fail."""
    limiter = RateLimiter(RedisCounts("redis://127.0.0.1:1/0", "x:"), "secret")
    assert limiter.hit("ip", "k", Limit(1, 60)) and limiter.hit("ip", "k", Limit(1, 60))


def test_store_follows_the_broker_setting(engine: Engine) -> None:
    """Scenario: a Redis broker: counts in Redis; no broker: the database, never memory."""
    assert isinstance(make_counter_store(None, "sqlite:///x.db", engine), SqlCounts)
    assert isinstance(make_counter_store(REDIS_URL, "sqlite:///x.db", engine), RedisCounts)


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
        (None, "unknown"),
    ],
)
def test_client_key_groups_ipv6_by_64(host: str | None, key: str) -> None:
    """Scenario: an IPv6 client owns a /64, so it counts as one source however it varies."""
    assert client_key(host) == key


def test_login_waits_double_and_end_on_success(engine: Engine) -> None:
    """Scenario: past the free failures each one doubles the wait; the right password clears it."""
    policy = LoginPolicy(free_per_account=2, free_per_source=100, first_wait=10, max_wait=25)
    throttle = LoginThrottle(SqlCounts(engine), "secret", policy)
    waits = []
    for _ in range(5):
        waits.append(round(throttle.wait("erin", "203.0.113.7")))
        throttle.failed("erin", "203.0.113.7")
    assert waits == [0, 0, 10, 20, 25]
    assert throttle.wait("ERIN ", "203.0.113.7") > 0  # one account however it is typed
    assert throttle.wait("erin", "198.51.100.1") == 0  # another source is not slowed
    throttle.succeeded("erin", "203.0.113.7")
    assert throttle.wait("erin", "203.0.113.7") == 0
    assert limiter_key("secret", "login", "erin") != limiter_key("other", "login", "erin")

"""The subscribe rate limiter: in memory for one process, in Redis for several."""

from __future__ import annotations

import uuid

import pytest
import redis

from newsletter.web.ratelimit import (
    Limit,
    MemoryRateLimiter,
    RedisRateLimiter,
    limiter_key,
    make_rate_limiter,
)

REDIS_URL = "redis://127.0.0.1:6379/14"


def test_memory_limiter_counts_per_key() -> None:
    """Scenario: one process allows N attempts per key and window, each key on its own."""
    limiter = MemoryRateLimiter()
    limit = Limit(2, 3600)
    assert [limiter.hit("a", limit) for _ in range(3)] == [True, True, False]
    assert limiter.hit("b", limit)


def test_redis_limiter_is_shared_between_processes() -> None:
    """Scenario: two web processes behind one balancer share the count through Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("the Redis on 127.0.0.1:6379 is down")
    prefix = f"test:{uuid.uuid4().hex}:"  # other test runs share this Redis
    first, second = RedisRateLimiter(REDIS_URL, prefix), RedisRateLimiter(REDIS_URL, prefix)
    limit = Limit(3, 60)
    key = limiter_key("secret", "address", "a@example.org")
    assert [first.hit(key, limit), second.hit(key, limit), first.hit(key, limit)] == [True] * 3
    assert not second.hit(key, limit)
    stored = [k.decode() for k in client.scan_iter(prefix + "*")]
    assert stored and all("a@example.org" not in k for k in stored)  # only keyed hashes
    assert all(client.ttl(k) > 0 for k in stored)  # and they expire
    client.delete(*stored)


def test_redis_down_lets_people_subscribe() -> None:
    """Scenario: Redis is unreachable: the form stays open rather than failing everyone."""
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0")
    assert limiter.hit("k", Limit(1, 60)) and limiter.hit("k", Limit(1, 60))


def test_limiter_follows_the_broker_setting() -> None:
    """Scenario: a Redis broker URL means a shared limiter; no broker means in memory."""
    assert isinstance(make_rate_limiter(None), MemoryRateLimiter)
    assert isinstance(make_rate_limiter(REDIS_URL), RedisRateLimiter)

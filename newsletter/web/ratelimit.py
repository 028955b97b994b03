"""Rate limits for the subscribe form: per client IP and per address.

In memory (one process) by default; in Redis when a broker is configured, so that every
`newsletter serve` process behind a load balancer shares the counts. Keys are keyed hashes:
neither store ever holds an IP or an address in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

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


class RateLimiter(Protocol):
    def hit(self, key: str, limit: Limit) -> bool:
        """Count one attempt; False when the limit is already reached."""


class MemoryRateLimiter:
    """A sliding window per key, for one process."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: Limit) -> bool:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - limit.seconds:
                hits.popleft()
            if len(hits) >= limit.count:
                return False
            hits.append(now)
            if len(self._hits) > 100_000:  # a flood of distinct keys: forget the idle ones
                for stale in [k for k, v in self._hits.items() if not v]:
                    del self._hits[stale]
            return True


class RedisRateLimiter:
    """A fixed window per key in Redis (INCR + EXPIRE), shared by every web process."""

    def __init__(self, url: str, prefix: str = "newsletter:ratelimit:") -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix

    def hit(self, key: str, limit: Limit) -> bool:
        window = int(time.time() // limit.seconds)
        name = f"{self._prefix}{key}:{limit.seconds}:{window}"
        try:
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, limit.seconds)
            count = int(pipe.execute()[0])
        except Exception as exc:  # Redis down: let people subscribe rather than fail them
            log.warning("rate limiter unavailable, allowing: %s", exc)
            return True
        return count <= limit.count


def make_rate_limiter(broker_url: str | None) -> RateLimiter:
    if broker_url and broker_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisRateLimiter(broker_url)
    return MemoryRateLimiter()


def limiter_key(secret_key: str, kind: str, value: str) -> str:
    """A keyed hash, so the limiter's store holds no IP or address in clear."""
    digest = hmac.new(secret_key.encode(), f"{kind}\0{value}".encode(), hashlib.sha256)
    return f"{kind}:{digest.hexdigest()[:32]}"

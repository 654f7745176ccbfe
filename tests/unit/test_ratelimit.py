"""Token buckets: a burst goes through, then the sustained rate, and the wait is told."""

from __future__ import annotations

import pytest

from backend.core.ratelimit import KeyedLimiter, TokenBucket


def test_burst_then_refusal_with_wait() -> None:
    bucket = TokenBucket(rate=2.0, burst=5)
    start = bucket.updated
    assert [bucket.take(start) for _ in range(5)] == [0.0] * 5
    wait = bucket.take(start)
    assert wait == pytest.approx(0.5)


def test_refill_at_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=5)
    start = bucket.updated
    for _ in range(5):
        bucket.take(start)
    assert bucket.take(start + 0.25) > 0  # half a token: still refused
    assert bucket.take(start + 0.5) == 0.0  # one whole token since the start
    assert bucket.take(start + 0.5) > 0


def test_refill_never_exceeds_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=3)
    start = bucket.updated
    later = start + 3600
    assert [bucket.take(later) for _ in range(3)] == [0.0] * 3
    assert bucket.take(later) == pytest.approx(0.1)


def test_sustained_rate() -> None:
    # Steps of 1/16 s at 4 tokens/s: binary-exact, so the count is exact.
    bucket = TokenBucket(rate=4.0, burst=1)
    start = bucket.updated
    allowed = sum(1 for i in range(161) if bucket.take(start + i / 16) == 0.0)
    # 10 seconds at 4/s plus the initial token
    assert allowed == 41


def test_client_at_exactly_the_rate_is_never_refused() -> None:
    bucket = TokenBucket(rate=8.0, burst=2)
    start = bucket.updated
    assert all(bucket.take(start + i * 0.125) == 0.0 for i in range(200))


def test_keyed_limiter_keeps_keys_apart() -> None:
    limiter = KeyedLimiter(rate=0.001, burst=2)
    assert limiter.take("10.0.0.1") == 0.0
    assert limiter.take("10.0.0.1") == 0.0
    assert limiter.take("10.0.0.1") > 0
    assert limiter.take("10.0.0.2") == 0.0


def test_keyed_limiter_forgets_least_recently_used() -> None:
    limiter = KeyedLimiter(rate=0.001, burst=1, max_keys=2)
    assert limiter.take("a") == 0.0
    assert limiter.take("b") == 0.0
    assert limiter.take("a") > 0  # "a" is now the most recent
    assert limiter.take("c") == 0.0  # evicts "b"
    assert limiter.take("a") > 0  # "a" was kept, still empty
    assert limiter.take("b") == 0.0  # "b" starts afresh

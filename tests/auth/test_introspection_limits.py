"""The two guards in front of introspection: refusals remembered briefly and boundedly, a token bucket."""

from __future__ import annotations

import hashlib
import time

from mcp_gateway.auth.introspection import Refusals, TokenBucket


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def test_a_refusal_is_remembered_for_its_time_only():
    refusals = Refusals()
    refusals.add(_digest("bad"), "token is not active", 0.2)
    assert refusals.get(_digest("bad")) == "token is not active"
    assert refusals.get(_digest("other")) is None
    time.sleep(0.25)
    assert refusals.get(_digest("bad")) is None
    refusals.add(_digest("bad"), "token is not active", 0)  # 0 seconds: not remembered at all
    assert len(refusals) == 0


def test_refusals_are_bounded_and_the_oldest_go_first():
    refusals = Refusals(size=100)
    for index in range(1000):
        refusals.add(_digest(f"t{index}"), "token is not active", 60)
    assert len(refusals) == 100
    assert refusals.get(_digest("t0")) is None and refusals.get(_digest("t999")) is not None


def test_the_bucket_allows_its_burst_then_its_rate_and_never_saves_more_than_the_burst():
    bucket = TokenBucket(rate=10.0, burst=5)
    assert [bucket.take() for _ in range(5)] == [0.0] * 5
    assert 0 < bucket.take() <= 0.1
    time.sleep(0.25)  # at least 2.5 calls' worth
    assert bucket.take() == 0.0 and bucket.take() == 0.0
    time.sleep(1.0)  # ten calls' worth, but the bucket holds five
    assert [bucket.take() == 0.0 for _ in range(6)] == [True] * 5 + [False]

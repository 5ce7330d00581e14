"""The API's in-process cache of finished answers, on a fake clock."""

from __future__ import annotations

from api.answer_cache import AnswerCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_lives_for_the_ttl() -> None:
    clock = Clock()
    cache = AnswerCache(ttl_s=10, clock=clock)
    cache.put(b"seed", b"answer", record_expires_at=clock.now + 3600)
    clock.now += 9.9
    assert cache.get(b"seed") == b"answer"
    clock.now += 0.2
    assert cache.get(b"seed") is None
    assert len(cache) == 0


def test_an_answer_never_outlives_its_redis_record() -> None:
    clock = Clock()
    cache = AnswerCache(ttl_s=10, clock=clock)
    cache.put(b"soon", b"a", record_expires_at=clock.now + 2)
    cache.put(b"gone", b"b", record_expires_at=clock.now - 1)
    assert cache.get(b"gone") is None
    clock.now += 2
    assert cache.get(b"soon") is None


def test_the_least_recently_used_answer_goes_first() -> None:
    clock = Clock()
    cache = AnswerCache(ttl_s=10, max_entries=2, clock=clock)
    cache.put(b"a", b"1", clock.now + 100)
    cache.put(b"b", b"2", clock.now + 100)
    assert cache.get(b"a") == b"1"  # now "b" is the oldest
    cache.put(b"c", b"3", clock.now + 100)
    assert cache.get(b"b") is None
    assert cache.get(b"a") == b"1" and cache.get(b"c") == b"3"


def test_a_ttl_of_zero_keeps_nothing() -> None:
    clock = Clock()
    cache = AnswerCache(ttl_s=0, clock=clock)
    cache.put(b"seed", b"answer", clock.now + 100)
    assert cache.get(b"seed") is None

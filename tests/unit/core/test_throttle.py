"""The per-VM token bucket (Azure: 5 requests/s per VM), driven by a virtual clock."""

from __future__ import annotations

from openimds.core.throttle import RateLimiter


def take(limiter: RateLimiter, key: str, now: float, count: int) -> list[bool]:
    return [limiter.allow(key, now) for _ in range(count)]


def test_a_burst_of_rate_passes_then_429() -> None:
    limiter = RateLimiter(5)
    assert take(limiter, "vm", 100.0, 5) == [True] * 5
    assert not limiter.allow("vm", 100.0)


def test_budget_refills_at_the_rate() -> None:
    limiter = RateLimiter(5)
    take(limiter, "vm", 0.0, 5)
    assert not limiter.allow("vm", 0.1)
    assert limiter.allow("vm", 0.2)  # 0.2 s at 5/s is one token
    assert not limiter.allow("vm", 0.2)
    assert take(limiter, "vm", 10.0, 6) == [True] * 5 + [False]  # never more than `rate` saved


def test_sustained_rate_is_the_rate() -> None:
    limiter = RateLimiter(5)
    passed = sum(limiter.allow("vm", i * 0.01) for i in range(1000))  # 100 req/s for 10 s
    assert 50 <= passed <= 55


def test_budgets_are_per_key() -> None:
    limiter = RateLimiter(1)
    assert limiter.allow("a", 0.0)
    assert not limiter.allow("a", 0.0)
    assert limiter.allow("b", 0.0)


def test_zero_turns_it_off() -> None:
    limiter = RateLimiter(0)
    assert not limiter.enabled
    assert all(take(limiter, "vm", 0.0, 1000))
    assert RateLimiter(5).enabled


def test_fractional_rates() -> None:
    limiter = RateLimiter(0.5)
    assert limiter.allow("vm", 0.0)  # the first request always passes
    assert not limiter.allow("vm", 1.0)
    assert limiter.allow("vm", 3.0)


def test_clock_going_backwards_adds_nothing() -> None:
    limiter = RateLimiter(2)
    take(limiter, "vm", 50.0, 2)
    assert not limiter.allow("vm", 10.0)
    assert not limiter.allow("vm", 10.1)


def test_memory_is_bounded_by_recent_callers_not_by_the_fleet() -> None:
    limiter = RateLimiter(5)
    for n in range(10_000):  # ten thousand VMs, each calling once
        limiter.allow(f"vm-{n}/imds", n * 0.0001)
    assert len(limiter) == 10_000
    assert limiter.prune(2.0) == 10_000  # all refilled a second after their call
    assert len(limiter) == 0
    take(limiter, "busy", 2.0, 5)
    assert limiter.prune(2.5) == 0  # still refilling: kept, so its spent budget holds
    assert len(limiter) == 1
    assert limiter.prune(3.0) == 1

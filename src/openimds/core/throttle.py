"""Per-VM request budgets (Azure allows 5 requests/s for IMDS, 20/s for identity).

A token bucket per (VM, budget): `rate` tokens a second, at most `rate` saved up, so a
burst of `rate` requests passes and the sustained rate is `rate`. The caller passes the
time in, which keeps this pure and lets tests drive it with a virtual clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self, key: str, now: float) -> bool:
        """Take one token for `key`; False when the budget is spent. rate 0 = no limit."""
        if self.rate <= 0:
            return True
        # Below 1 request/s the bucket must still hold one whole token, or it never refills.
        capacity = max(self.rate, 1.0)
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = _Bucket(capacity - 1.0, now)
            return True
        elapsed = max(0.0, now - bucket.stamp)
        bucket.tokens = min(capacity, bucket.tokens + elapsed * self.rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False

    def prune(self, now: float) -> int:
        """Forget buckets that have refilled: a full bucket is what a new one would be, so
        memory stays bounded by the VMs that called within the last refill time, however
        many VMs the fleet has or has had. The number forgotten."""
        if self.rate <= 0:
            return 0
        refill = max(self.rate, 1.0) / self.rate
        idle = [key for key, bucket in self._buckets.items() if now - bucket.stamp >= refill]
        for key in idle:
            del self._buckets[key]
        return len(idle)

    def __len__(self) -> int:
        return len(self._buckets)

"""Per-second figures from cumulative counters, for charts: what changed between two
readings of the request metrics, and the latency percentiles of that interval.

The metrics (web/metrics.py) only ever count up; a reading keeps the totals by route,
the 429s and the latency histogram's bucket counts, and the difference of two readings
is one point. Percentiles come from the difference of the bucket counts: the bucket
holding the wanted rank, and a linear interpolation inside it (as Prometheus's
histogram_quantile does), so an estimate is never further off than its bucket is wide;
a rank in the bucket above the highest bound gets that bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openimds.web.metrics import RequestMetrics


@dataclass(frozen=True, slots=True)
class Reading:
    """The request metrics' totals at one moment."""

    routes: Mapping[str, int]  # requests by route, every status and VM
    throttled: int
    buckets: tuple[int, ...]  # latency histogram counts, one per bucket


@dataclass(frozen=True, slots=True)
class Point:
    """What happened between two readings."""

    routes: Mapping[str, int]  # only the routes that had requests
    throttled: int
    p50_ms: float | None  # None: no request
    p99_ms: float | None

    @property
    def requests(self) -> int:
        return sum(self.routes.values())


def read(metrics: RequestMetrics) -> Reading:
    """The totals now: one pass over the counters (route x status x VM), off the hot path."""
    routes: dict[str, int] = {}
    for (route, _, _), count in metrics.requests.items():
        routes[route] = routes.get(route, 0) + count
    return Reading(routes, metrics.throttled, metrics.latency.counts())


def difference(before: Reading, after: Reading, bounds: Sequence[float]) -> Point:
    """The point between two readings of the same metrics (`after` the later one)."""
    routes = {
        route: count - before.routes.get(route, 0)
        for route, count in after.routes.items()
        if count != before.routes.get(route, 0)
    }
    buckets = [now - then for now, then in zip(after.buckets, before.buckets, strict=True)]
    return Point(
        routes=routes,
        throttled=after.throttled - before.throttled,
        p50_ms=_ms(percentile(bounds, buckets, 0.5)),
        p99_ms=_ms(percentile(bounds, buckets, 0.99)),
    )


def percentile(bounds: Sequence[float], counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) of a histogram: `counts` per bucket, bucket i holding
    values up to bounds[i] and above bounds[i-1] (0 for the first), the last one above
    every bound. None when it is empty."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    below = 0
    for index, count in enumerate(counts):
        if count and below + count >= rank:
            if index == len(bounds):
                return bounds[-1]
            low = bounds[index - 1] if index else 0.0
            return low + (bounds[index] - low) * (rank - below) / count
        below += count
    return bounds[-1]  # not reached: the last bucket with a count holds rank <= total


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def chart(points: Sequence[Point], end: int) -> dict[str, Any]:
    """The body of GET /metrics/series: every array oldest first, one entry per point;
    a route appears when one of the points has it, with 0 where another has not."""
    names = sorted({route for point in points for route in point.routes})
    return {
        "step": 1,
        "end": end,
        "requests": [point.requests for point in points],
        "routes": {name: [point.routes.get(name, 0) for point in points] for name in names},
        "throttled": [point.throttled for point in points],
        "p50_ms": [point.p50_ms for point in points],
        "p99_ms": [point.p99_ms for point in points],
    }

"""Request metrics kept as plain counters on the hot path, exposed to Prometheus on scrape.

Incrementing a dict entry costs a fraction of a prometheus_client label lookup, so the
listener counts here and a custom collector turns the counts into metric families only
when /metrics is read.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

# Seconds; the hot path answers in tens of microseconds, errors and signing in milliseconds.
BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)


class Histogram:
    """Counts per bucket and a sum, as plain numbers; cumulative only when scraped."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self.bounds, value)] += 1
        self._sum += value

    def counts(self) -> tuple[int, ...]:
        """The count of each bucket (not cumulative), the last one above every bound."""
        return tuple(self._counts)

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        """The Prometheus family: cumulative buckets (`le`) and the sum."""
        running = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip((*self.bounds, float("inf")), self._counts, strict=True):
            running += count
            label = "+Inf" if bound == float("inf") else repr(float(bound))
            buckets.append((label, float(running)))
        family = HistogramMetricFamily(name, documentation)
        family.add_metric((), buckets, self._sum)
        return family


class RequestMetrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, int, str], int] = {}
        self.unknown_callers = 0
        self.proxy_refused: dict[str, int] = {}  # by reason (core/signed_caller.py)
        self.throttled = 0
        self.refused_connections = 0  # over a connection cap, closed unread
        self.head_timeouts = 0  # 408: a request head that did not arrive in time
        self.latency = Histogram(BUCKETS)

    def observe(self, route: str, status: int, vm: str, seconds: float) -> None:
        key = (route, status, vm)
        self.requests[key] = self.requests.get(key, 0) + 1
        self.latency.observe(seconds)

    def refused(self, reason: str) -> None:
        self.proxy_refused[reason] = self.proxy_refused.get(reason, 0) + 1


class MetricsCollector(Collector):
    def __init__(self, metrics: RequestMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "openimds_requests", "Metadata requests answered", labels=("route", "status", "vm")
        )
        for (route, status, vm), count in sorted(self.metrics.requests.items()):
            requests.add_metric((route, str(status), vm), count)
        yield requests
        unknown = CounterMetricFamily(
            "openimds_unknown_callers", "Requests from sources no VM claims"
        )
        unknown.add_metric((), self.metrics.unknown_callers)
        yield unknown
        refused = CounterMetricFamily(
            "openimds_proxy_refused",
            "Requests refused for a missing, forged or badly signed proxy identity",
            labels=("reason",),
        )
        for reason, count in sorted(self.metrics.proxy_refused.items()):
            refused.add_metric((reason,), count)
        yield refused
        throttled = CounterMetricFamily("openimds_throttled", "Requests answered with 429")
        throttled.add_metric((), self.metrics.throttled)
        yield throttled
        refused = CounterMetricFamily(
            "openimds_refused_connections", "Connections closed unread: over a connection cap"
        )
        refused.add_metric((), self.metrics.refused_connections)
        yield refused
        head = CounterMetricFamily(
            "openimds_head_timeouts", "Request heads that did not arrive in time (408)"
        )
        head.add_metric((), self.metrics.head_timeouts)
        yield head
        yield self.metrics.latency.family(
            "openimds_request_duration_seconds", "Time to answer a metadata request"
        )

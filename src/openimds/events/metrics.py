"""Scheduled-event metrics: live events by type and state, transitions, approval latency.

Counted as plain numbers when the state changes; turned into metric families only when
/metrics is scraped (as web/metrics.py does for requests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from openimds.core.scheduled_events import EVENT_TYPES, EventBook, Step
from openimds.web.metrics import Histogram

# Seconds from an event's posting to a VM's approval: handlers poll about once a second,
# and the longest default notice is 15 minutes.
LATENCY_BUCKETS: tuple[float, ...] = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 900, 1800)
STATES = ("Pending", "Scheduled", "Started")


class EventMetrics:
    def __init__(self) -> None:
        self.transitions: dict[tuple[str, str], int] = {}
        self.latency = Histogram(LATENCY_BUCKETS)

    def record(self, steps: Iterable[Step]) -> None:
        for step in steps:
            key = (step.before.type, step.trigger)
            self.transitions[key] = self.transitions.get(key, 0) + 1
            if step.trigger == "approve" and step.after is not None:
                known = {a.vm for a in step.before.approvals}
                for approval in step.after.approvals:
                    if approval.vm not in known:
                        self.latency.observe(max(0.0, approval.at - step.before.posted_at))


class EventsCollector(Collector):
    def __init__(self, metrics: EventMetrics, book: Callable[[], EventBook]) -> None:
        self.metrics = metrics
        self.book = book

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        live = GaugeMetricFamily(
            "openimds_scheduled_events",
            "Live scheduled events by type and state",
            labels=("type", "state"),
        )
        counts = {(t, s): 0 for t in EVENT_TYPES for s in STATES}
        for event in self.book().events.values():
            counts[(event.type, event.state)] += 1
        for (event_type, state), count in counts.items():
            live.add_metric((event_type, state), count)
        yield live
        steps = CounterMetricFamily(
            "openimds_scheduled_event_transitions",
            "Scheduled-event state changes by type and cause",
            labels=("type", "trigger"),
        )
        for (kind, trigger), count in sorted(self.metrics.transitions.items()):
            steps.add_metric((kind, trigger), count)
        yield steps
        yield self.metrics.latency.family(
            "openimds_scheduled_event_approval_latency_seconds",
            "Time from an event's posting to each affected VM's approval",
        )

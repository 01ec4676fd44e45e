"""The guest plane's Prometheus figures: VMs by reported state, reports received."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from openimds.guest.book import GuestBook
from openimds.inventory.live import LiveInventory


class GuestCollector(Collector):
    def __init__(self, book: GuestBook, inventory: LiveInventory) -> None:
        self.book = book
        self.inventory = inventory

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        counts = {"Ready": 0, "NotReady": 0, "none": 0}
        states = self.book.states
        for name in self.inventory.vms:
            state = states.get(name)
            health = None if state is None else state.health
            counts[str(health["state"]) if health else "none"] += 1
        vms = GaugeMetricFamily(
            "openimds_guest_vms",
            "VMs by the state their agents last reported (none: no report yet)",
            labels=["state"],
        )
        for label, count in counts.items():
            vms.add_metric([label], count)
        yield vms
        reports = CounterMetricFamily(
            "openimds_guest_reports",
            "Health reports and status uploads received by this node",
            labels=["kind"],
        )
        reports.add_metric(["health"], sum(s.reports for s in states.values()))
        reports.add_metric(["status"], sum(s.uploads for s in states.values()))
        yield reports

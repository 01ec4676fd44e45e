"""Fault metrics: how often each rule fired (the answers themselves are counted by the
listener under the route `hook:<rule>`)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from openimds.faults.rules import FaultRules


class FaultsCollector(Collector):
    def __init__(self, fault_rules: FaultRules) -> None:
        self.fault_rules = fault_rules

    def collect(self) -> Iterator[CounterMetricFamily]:
        fired = CounterMetricFamily(
            "openimds_faults_fired", "Requests each fault rule took over", labels=("rule",)
        )
        for rule, count in sorted(self.fault_rules.fired.items()):
            fired.add_metric((rule,), count)
        yield fired

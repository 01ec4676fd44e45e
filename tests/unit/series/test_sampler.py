"""The ring of per-second points: sampled from the metrics on the server's clock,
bounded, read back for the last N seconds; the `seconds` parameter's bounds."""

from __future__ import annotations

import pytest

from openimds.runtime import Clock
from openimds.series.admin import SeriesError, seconds
from openimds.series.sampler import SIZE, Sampler
from openimds.web.metrics import RequestMetrics


def test_each_sample_adds_what_was_counted_since_the_last_at_the_clocks_second() -> None:
    metrics, clock = RequestMetrics(), Clock()
    metrics.observe("instance", 200, "vm-a", 0.001)  # before the sampler: not in a point
    sampler = Sampler(metrics, clock)
    for _ in range(3):
        metrics.observe("instance", 200, "vm-a", 0.00005)
    metrics.observe("token", 429, "vm-a", 0.00005)
    metrics.throttled += 1
    sampler.sample()
    clock.advance(3600)  # a virtual clock moves the newest point's second
    sampler.sample()
    body = sampler.chart(SIZE)
    assert body["end"] == int(clock.now())
    assert body["requests"] == [4, 0]
    assert body["routes"] == {"instance": [3, 0], "token": [1, 0]}
    assert body["throttled"] == [1, 0]
    assert body["p50_ms"][1] is None and 0 < body["p50_ms"][0] <= 0.1


def test_the_ring_keeps_900_points_and_a_read_takes_the_newest() -> None:
    metrics = RequestMetrics()
    sampler = Sampler(metrics, Clock())
    for n in range(SIZE + 5):
        for _ in range(n % 3):
            metrics.observe("instance", 200, "vm-a", 0.00005)
        sampler.sample()
    assert len(sampler.points) == SIZE
    assert len(sampler.chart(SIZE)["requests"]) == SIZE
    last = sampler.chart(3)
    assert last["requests"] == [n % 3 for n in range(SIZE + 2, SIZE + 5)]
    assert {len(last[key]) for key in ("requests", "throttled", "p50_ms", "p99_ms")} == {3}
    assert len(last["routes"]["instance"]) == 3


@pytest.mark.parametrize(("raw", "value"), [(None, 900), ("1", 1), ("60", 60), ("900", 900)])
def test_seconds_from_1_to_900(raw: str | None, value: int) -> None:
    assert seconds(raw) == value


@pytest.mark.parametrize("raw", ["0", "901", "", "-5", "1.5", "ten", "²"])
def test_other_seconds_are_refused_naming_the_parameter(raw: str) -> None:
    with pytest.raises(SeriesError, match=r"^seconds: expected a whole number from 1 to 900"):
        seconds(raw)

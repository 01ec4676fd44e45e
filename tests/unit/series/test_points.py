"""Per-second figures from cumulative metrics: readings, their differences, percentiles
estimated from histogram buckets, and the chart body."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openimds.series.points import Point, Reading, chart, difference, percentile, read
from openimds.web.metrics import BUCKETS, RequestMetrics

BOUNDS = (0.001, 0.002, 0.004)  # buckets: (0, 1 ms], (1, 2], (2, 4], above 4 ms


def test_a_reading_totals_each_route_over_statuses_and_vms() -> None:
    metrics = RequestMetrics()
    metrics.observe("instance", 200, "vm-a", 0.00005)
    metrics.observe("instance", 429, "vm-b", 0.00005)
    metrics.observe("token", 200, "vm-a", 0.003)
    metrics.throttled = 1
    reading = read(metrics)
    assert reading.routes == {"instance": 2, "token": 1}
    assert reading.throttled == 1
    assert len(reading.buckets) == len(BUCKETS) + 1
    assert reading.buckets[0] == 2 and sum(reading.buckets) == 3


def test_a_point_is_what_changed_between_two_readings() -> None:
    before = Reading({"instance": 10, "token": 4}, 2, (5, 5, 0, 0))
    after = Reading({"instance": 13, "token": 4, "versions": 1}, 3, (7, 5, 2, 0))
    point = difference(before, after, BOUNDS)
    assert point.routes == {"instance": 3, "versions": 1}  # token: no requests, left out
    assert point.requests == 4
    assert point.throttled == 1
    # Four observations in this second: two up to 1 ms, two in (2, 4] ms.
    assert point.p50_ms == 1.0  # rank 2 ends the first bucket
    assert point.p99_ms == pytest.approx(3.96)  # rank 3.96: 98% into (2, 4]


def test_a_second_without_requests_has_no_latency() -> None:
    same = Reading({"instance": 10}, 0, (5, 0, 0, 0))
    point = difference(same, same, BOUNDS)
    assert point == Point({}, 0, None, None)
    assert point.requests == 0


@pytest.mark.parametrize(
    ("counts", "q", "expected"),
    [
        ((4, 0, 0, 0), 0.5, 0.0005),  # halfway into (0, 1 ms]
        ((0, 2, 0, 0), 0.5, 0.0015),  # halfway into (1, 2 ms]
        ((0, 0, 0, 3), 0.5, 0.004),  # above every bound: the highest bound
        ((1, 0, 0, 1), 0.99, 0.004),
        ((99, 0, 1, 0), 0.99, 0.001),  # rank 99 ends the first bucket
        ((0, 0, 0, 0), 0.5, None),
    ],
)
def test_percentiles_interpolate_inside_the_bucket_of_their_rank(
    counts: tuple[int, ...], q: float, expected: float | None
) -> None:
    found = percentile(BOUNDS, counts, q)
    assert found == (None if expected is None else pytest.approx(expected))


@given(
    st.lists(st.integers(min_value=0, max_value=1000), min_size=4, max_size=4),
    st.floats(min_value=0.01, max_value=1.0),
)
def test_a_percentile_lies_in_its_bucket_and_grows_with_q(counts: list[int], q: float) -> None:
    found = percentile(BOUNDS, counts, q)
    if sum(counts) == 0:
        assert found is None
        return
    assert found is not None
    # The bucket the rank q * total falls in holds the true quantile, and the estimate.
    cumulative = [sum(counts[: i + 1]) for i in range(len(counts))]
    index = next(i for i, total in enumerate(cumulative) if total >= q * sum(counts))
    edges = (0.0, *BOUNDS, BOUNDS[-1])
    assert edges[index] - 1e-12 <= found <= edges[index + 1] + 1e-12
    higher = percentile(BOUNDS, counts, min(1.0, q + 0.1))
    assert higher is not None and higher >= found - 1e-12


def test_the_chart_has_one_entry_per_point_oldest_first_in_every_array() -> None:
    points = [
        Point({"instance": 5}, 0, 0.05, 0.09),
        Point({}, 0, None, None),
        Point({"instance": 9, "token": 2}, 4, 0.1, 2.5),
    ]
    body = chart(points, 1_700_000_002)
    assert body == {
        "step": 1,
        "end": 1_700_000_002,
        "requests": [5, 0, 11],
        "routes": {"instance": [5, 0, 9], "token": [0, 0, 2]},
        "throttled": [0, 0, 4],
        "p50_ms": [0.05, None, 0.1],
        "p99_ms": [0.09, None, 2.5],
    }
    assert chart([], 7) == {
        "step": 1,
        "end": 7,
        "requests": [],
        "routes": {},
        "throttled": [],
        "p50_ms": [],
        "p99_ms": [],
    }


def test_latency_in_milliseconds_from_the_real_buckets() -> None:
    metrics = RequestMetrics()
    before = read(metrics)
    for _ in range(100):
        metrics.observe("instance", 200, "vm-a", 0.00003)  # in (0, 0.1 ms]
    metrics.observe("token", 200, "vm-a", 0.02)  # in (10, 25 ms]
    point = difference(before, read(metrics), metrics.latency.bounds)
    assert point.p50_ms is not None and 0 < point.p50_ms <= 0.1
    assert point.p99_ms is not None and 0 < point.p99_ms <= 0.1
    assert not math.isnan(point.p99_ms)

"""GET /metrics/series over real sockets: the requests made show per route, the 429s
past the 5 a second budget show as throttled, and their seconds have latencies."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.rawhttp import RawConnection, get
from tests.support.server import RunningServer, start_server

NAME = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"
TOKEN = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
SERIES = ("requests", "throttled", "p50_ms", "p99_ms")


def _series(server: RunningServer, total: int) -> dict[str, Any]:
    """The figures once they hold `total` requests (sampled once a second), or after 5 s."""
    deadline = time.monotonic() + 5
    while True:
        body: dict[str, Any] = server.admin("GET", "/metrics/series?seconds=60").json()
        if sum(body["requests"]) >= total or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_series_count_requests_by_route_429s_and_latency(tmp_path: Path) -> None:
    server = start_server(tmp_path, rate_limit=None)  # the default budget: 5 a second
    try:
        with RawConnection(server.metadata_url) as conn:
            conn.send(get(NAME) * 12)  # back to back, well inside one second
            statuses = [conn.read_response().status for _ in range(12)]
        assert statuses[:5] == [200] * 5 and statuses.count(429) >= 5
        assert [server.get(TOKEN).status_code for _ in range(3)] == [200] * 3
        body = _series(server, 15)
        assert {len(body[key]) for key in SERIES} == {len(body["requests"])}
        assert {len(counts) for counts in body["routes"].values()} == {len(body["requests"])}
        assert body["step"] == 1 and abs(body["end"] - time.time()) < 5
        assert sum(body["requests"]) == 15
        assert sum(body["routes"]["instance"]) == 12
        assert sum(body["routes"]["identity"]) == 3
        assert sum(body["throttled"]) == statuses.count(429)
        for i, count in enumerate(body["requests"]):
            p50, p99 = body["p50_ms"][i], body["p99_ms"][i]
            if count:
                assert p50 is not None and p99 is not None and 0 < p50 <= p99
            else:
                assert p50 is None and p99 is None
        newest = server.admin("GET", "/metrics/series?seconds=1").json()
        assert {len(newest[key]) for key in SERIES} == {1}
    finally:
        server.stop()


@pytest.mark.parametrize("raw", ["0", "901", "x", "-1", ""])
def test_seconds_out_of_range_is_a_400_naming_it(live: RunningServer, raw: str) -> None:
    answer = live.admin("GET", f"/metrics/series?seconds={raw}")
    assert answer.status_code == 400
    wording = f"seconds: expected a whole number from 1 to 900, got {raw!r}"
    assert answer.json() == {"error": wording}

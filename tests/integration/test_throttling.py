"""Per-VM request budgets and caller resolution by source address, over real sockets."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tests.support.rawhttp import RawConnection, get
from tests.support.server import RunningServer, server_fixture, start_server

LEAF = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"
THROTTLED = {"error": "Too many requests"}

FLEET = """
server:
  rate_limit: {rate}
vms:
  - addresses: [127.0.0.2]
    instance: {{compute: {{name: vm-b}}}}
  - addresses: [127.0.0.3]
    instance: {{compute: {{name: vm-c}}}}
"""


def _burst(url: str, count: int, source: str | None = None) -> list[int]:
    """`count` requests back to back on one connection (well inside one second)."""
    with RawConnection(url, source=source) as conn:
        conn.send(get(LEAF) * count)
        return [conn.read_response().status for _ in range(count)]


def _fleet_server(tmp_path: Path, rate: int, rate_limit: str | None = "0") -> RunningServer:
    config = tmp_path / "fleet.yaml"
    config.write_text(FLEET.format(rate=rate))
    return start_server(tmp_path, config=str(config), rate_limit=rate_limit)


def test_rate_limit_flag_answers_429_beyond_the_budget(tmp_path: Path) -> None:
    running = start_server(tmp_path, rate_limit="4")
    try:
        with RawConnection(running.metadata_url) as conn:
            conn.send(get(LEAF) * 5)
            answers = [conn.read_response() for _ in range(5)]
            assert [a.status for a in answers] == [200, 200, 200, 200, 429]
            assert json.loads(answers[4].body) == THROTTLED
            assert answers[4].header("content-type") == "application/json; charset=utf-8"
            time.sleep(1.2 / 4)  # 4 a second: a token is back within a quarter second
            conn.send(get(LEAF))
            assert conn.read_response().status == 200
    finally:
        running.stop()


def test_default_budget_is_five_per_second(tmp_path: Path) -> None:
    running = start_server(tmp_path, rate_limit=None)
    try:
        assert _burst(running.metadata_url, 7) == [200] * 5 + [429] * 2
    finally:
        running.stop()


def test_rate_limit_zero_turns_throttling_off(live: RunningServer) -> None:
    assert _burst(live.metadata_url, 60) == [200] * 60


# The rate comes from the file alone (no --rate-limit flag).
fleet = server_fixture("fleet", start=_fleet_server, rate=3, rate_limit=None)


def test_budgets_are_per_vm_and_set_by_the_config_file(fleet: RunningServer) -> None:
    assert _burst(fleet.metadata_url, 4, source="127.0.0.2") == [200, 200, 200, 429]
    # The other VM's budget is untouched.
    assert _burst(fleet.metadata_url, 3, source="127.0.0.3") == [200, 200, 200]


def test_callers_resolve_to_their_vm_by_source_address(fleet: RunningServer) -> None:
    # After the previous test's bursts: at 3 a second each VM has a token again in 1/3 s.
    time.sleep(1.2 / 3)
    for source, name in (("127.0.0.2", b"vm-b"), ("127.0.0.3", b"vm-c")):
        with RawConnection(fleet.metadata_url, source=source) as conn:
            conn.send(get(LEAF))
            assert conn.read_response().body == name


def test_unknown_caller_gets_404_and_is_counted(fleet: RunningServer) -> None:
    for _ in range(2):
        with RawConnection(fleet.metadata_url, source="127.0.0.4") as conn:
            conn.send(get(LEAF))
            response = conn.read_response()
            assert response.status == 404
            assert json.loads(response.body) == {
                "error": "Not found. No virtual machine is registered for this caller"
            }
    metrics = fleet.admin("GET", "/metrics").text
    unknown = re.search(r"^openimds_unknown_callers_total (\S+)$", metrics, re.M)
    assert unknown is not None
    assert float(unknown.group(1)) >= 2
    assert re.search(r'^openimds_requests_total\{.*status="404".*vm="-"\} \S+$', metrics, re.M)
    assert re.search(r'^openimds_requests_total\{.*status="200".*vm="vm-b"\} \S+$', metrics, re.M)
    assert re.search(
        r'^openimds_requests_total\{route="instance",status="429",vm="vm-b"\} \S+$', metrics, re.M
    )
    throttled = re.search(r"^openimds_throttled_total (\S+)$", metrics, re.M)
    assert throttled is not None
    assert float(throttled.group(1)) >= 1


def test_unknown_caller_asking_for_a_token_gets_a_400_not_a_retried_404(
    fleet: RunningServer,
) -> None:
    # 13: SDKs retry a 404 for tens of seconds; "Identity not found" makes them stop at once.
    token = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://x"
    with RawConnection(fleet.metadata_url, source="127.0.0.4") as conn:
        conn.send(get(token))
        response = conn.read_response()
    assert response.status == 400
    assert json.loads(response.body) == {
        "error": "invalid_request",
        "error_description": "Identity not found",
    }

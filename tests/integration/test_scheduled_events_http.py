"""Scheduled events end to end: the real server, the real CLI, clients over loopback HTTP,
SIGKILL and restart, the example drain agent."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from openimds.cli.main import main
from tests.support.server import RunningServer, start_server

URL = "/metadata/scheduledevents?api-version=2020-07-01"
ROOT = Path(__file__).resolve().parents[2]

# Two VMs of one scale set, told apart by the loopback address they call from.
FLEET = """
events:
  approval: all
vms:
  - name: pool-0
    addresses: [127.0.0.2]
    instance: {compute: {name: pool-0, vmScaleSetName: pool}}
  - name: pool-1
    addresses: [127.0.0.3]
    instance: {compute: {name: pool-1, vmScaleSetName: pool}}
"""


def wait_for(check: Callable[[], Any], timeout: float = 6.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {check}")


def cli(server: RunningServer, *args: str) -> str:
    env = {
        "OPENIMDS_ADMIN_LISTEN": server.admin_url.removeprefix("http://"),
        "OPENIMDS_ADMIN_TOKEN": server.admin_token,
        "OPENIMDS_CONFIG": "",
    }
    result = CliRunner().invoke(main, ["events", *args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def as_vm(server: RunningServer, address: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(
        base_url=server.metadata_url, transport=transport, headers={"Metadata": "true"}
    )


def approve(client: httpx.Client | RunningServer, event_id: str) -> httpx.Response:
    body = json.dumps({"StartRequests": [{"EventId": event_id}]})
    if isinstance(client, RunningServer):
        return httpx.post(client.metadata_url + URL, content=body, headers={"Metadata": "true"})
    return client.post(URL, content=body)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[RunningServer, Path]]:
    config = tmp_path / "fleet.yaml"
    config.write_text(FLEET)
    running = start_server(tmp_path, config=str(config))
    yield running, config
    running.stop()


def test_cli_schedules_a_client_approves_the_event_starts_and_disappears(
    server: RunningServer,
) -> None:
    assert server.get(URL).json() == {"DocumentIncarnation": 0, "Events": []}
    out = cli(
        server, "schedule", "Reboot", "--not-before", "+10m", "--duration", "1",
        "--complete-after", "0", "--description", "drill",
    )  # fmt: skip
    event_id = out.strip()
    doc = server.get(URL).json()
    (event,) = doc["Events"]
    assert doc["DocumentIncarnation"] == 1
    assert event["EventId"] == event_id and event["EventStatus"] == "Scheduled"
    assert event["Resources"] == ["demo-vm"] and event["Description"] == "drill"
    assert event["NotBefore"].endswith(" GMT") and event["DurationInSeconds"] == 1

    response = approve(server, event_id)
    assert (response.status_code, response.content) == (200, b"")
    started = server.get(URL).json()
    assert started["DocumentIncarnation"] == 2
    assert started["Events"][0]["EventStatus"] == "Started"
    assert started["Events"][0]["NotBefore"] == ""
    listing = cli(server, "list")
    assert event_id in listing and "Started" in listing and "demo-vm at 20" in listing

    gone = wait_for(lambda: (d := server.get(URL).json())["Events"] == [] and d)
    assert gone["DocumentIncarnation"] == 3
    assert cli(server, "list").strip() == "no live events"
    metrics = server.admin("GET", "/metrics").text
    assert 'openimds_scheduled_event_transitions_total{trigger="approved",type="Reboot"} 1.0' in (
        metrics
    )
    assert "openimds_scheduled_event_approval_latency_seconds_count 1.0" in metrics


def test_approval_survives_sigkill_and_incarnation_does_not_go_back(
    tmp_path: Path, fleet: tuple[RunningServer, Path]
) -> None:
    server, config = fleet
    scheduled = server.admin(
        "POST", "/events", json={"type": "Freeze", "target": "scaleSet:pool", "notBefore": "+10m"}
    )
    assert scheduled.status_code == 201
    event_id = scheduled.json()["events"][0]["eventId"]
    with as_vm(server, "127.0.0.2") as vm0:
        doc = vm0.get(URL).json()
        assert doc["DocumentIncarnation"] == 1
        assert doc["Events"][0]["Resources"] == ["pool-0", "pool-1"]
        assert approve(vm0, event_id).status_code == 200
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()

    again = start_server(tmp_path, config=str(config), state_path=server.state_path)
    try:
        (event,) = again.admin("GET", "/events").json()["events"]
        assert event["state"] == "Scheduled" and event["awaiting"] == ["pool-1"]
        assert [a["vm"] for a in event["approvals"]] == ["pool-0"]
        with as_vm(again, "127.0.0.2") as vm0, as_vm(again, "127.0.0.3") as vm1:
            assert vm0.get(URL).json()["DocumentIncarnation"] == 1
            assert approve(vm1, event_id).status_code == 200
            for client in (vm0, vm1):
                doc = client.get(URL).json()
                assert doc["DocumentIncarnation"] == 2
                assert doc["Events"][0]["EventStatus"] == "Started"
    finally:
        again.stop()


def test_targets_and_operator_commands(fleet: tuple[RunningServer, Path]) -> None:
    server, _ = fleet
    out = cli(server, "schedule", "Preempt", "--vm", "pool-1", "--id", "spot-1", "--json")
    assert json.loads(out)["events"][0]["resources"] == ["pool-1"]
    with as_vm(server, "127.0.0.2") as vm0, as_vm(server, "127.0.0.3") as vm1:
        assert vm0.get(URL).json()["Events"] == []
        assert [e["EventId"] for e in vm1.get(URL).json()["Events"]] == ["spot-1"]
        refused = approve(vm0, "spot-1")  # not one of pool-0's events
        assert refused.status_code == 400 and "spot-1" in refused.json()["error"]
        assert cli(server, "start", "spot-1").strip() == "spot-1: Started"
        assert vm1.get(URL).json()["Events"][0]["EventStatus"] == "Started"
        assert cli(server, "complete", "spot-1").strip() == "spot-1: removed"
        assert vm1.get(URL).json() == {"DocumentIncarnation": 3, "Events": []}
    assert server.admin("POST", "/events/spot-1/cancel").status_code == 404
    cli(server, "schedule", "Redeploy", "--scale-set", "pool", "--id", "r-1")
    assert server.admin("POST", "/events/r-1/complete").status_code == 409
    assert cli(server, "cancel", "r-1").strip() == "r-1: removed"
    bad = server.admin("POST", "/events", json={"type": "Reboot", "target": "tag:role=none"})
    assert bad.status_code == 400 and "matches no VM" in bad.json()["error"]
    assert httpx.get(server.admin_url + "/events").status_code == 401
    paths = server.admin("GET", "/openapi.json").json()["paths"]
    assert {"/events", "/events/scenario", "/events/{event_id}/cancel"} <= set(paths)


def test_malformed_posts_over_http(live: RunningServer) -> None:
    for body in (b"", b"{", b'{"StartRequests": "all"}'):
        response = httpx.post(live.metadata_url + URL, content=body, headers={"Metadata": "true"})
        assert response.status_code == 400 and "StartRequests" in response.json()["error"]
    no_header = httpx.post(live.metadata_url + URL, content=b'{"StartRequests":[]}')
    assert no_header.status_code == 400
    put = httpx.put(live.metadata_url + URL, headers={"Metadata": "true"})
    assert put.status_code == 405


def test_scenarios_from_config_once_and_from_the_cli(tmp_path: Path) -> None:
    scenario = tmp_path / "drill.yaml"
    scenario.write_text(
        "events:\n"
        "  - {type: Freeze, eventId: f-1, notBefore: +10m}\n"
        "  - {type: Reboot, eventId: r-later, at: +1h}\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text(f"events: {{scenario: {scenario}}}\n")
    server = start_server(tmp_path, config=str(config))
    try:
        assert [e["EventId"] for e in server.get(URL).json()["Events"]] == ["f-1"]
        states = {e["eventId"]: e["state"] for e in server.admin("GET", "/events").json()["events"]}
        assert states == {"f-1": "Scheduled", "r-later": "Pending"}
        more = tmp_path / "more.json"
        more.write_text(json.dumps([{"type": "Terminate", "eventId": "t-1", "notBefore": 60}]))
        assert "loaded 1 event(s)" in cli(server, "load", str(more))
        assert len(server.get(URL).json()["Events"]) == 2
    finally:
        server.stop()
    again = start_server(tmp_path, config=str(config), state_path=server.state_path)
    try:  # a restart does not replay the scenario
        listed = sorted(e["eventId"] for e in again.admin("GET", "/events").json()["events"])
        assert listed == ["f-1", "r-later", "t-1"]
    finally:
        again.stop()


def test_a_bad_scenario_stops_the_start(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"events: {{scenario: {tmp_path / 'missing.yaml'}}}\n")
    with pytest.raises(RuntimeError, match="cannot read"):
        start_server(tmp_path, config=str(config), timeout=10)


def test_drain_agent_drains_and_approves(server: RunningServer, tmp_path: Path) -> None:
    marker = tmp_path / "drained"
    log_path = tmp_path / "agent.log"
    with log_path.open("wb") as sink:
        agent = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "examples" / "drain_agent.py"),
                "--base-url",
                server.metadata_url,
                "--interval",
                "0.2",
                "--drain-command",
                f'echo "$EVENT_ID $EVENT_TYPE" > {marker}',
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "watching scheduled events of demo-vm" in log_path.read_text())
        event = server.admin(
            "POST",
            "/events",
            json={"type": "Redeploy", "durationInSeconds": 0, "completeAfter": 1},
        ).json()["events"][0]
        event_id = event["eventId"]
        wait_for(lambda: f"approved {event_id}" in log_path.read_text())
        assert marker.read_text().strip() == f"{event_id} Redeploy"
        wait_for(lambda: f"event {event_id} finished" in log_path.read_text())
        assert server.get(URL).json()["Events"] == []
        text = log_path.read_text()
        assert f"event {event_id} Redeploy Scheduled" in text
        assert f"event {event_id} Redeploy Started NotBefore=''" in text
    finally:
        agent.terminate()
        agent.wait(timeout=5)

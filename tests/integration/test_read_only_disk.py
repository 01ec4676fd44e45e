"""The state store's filesystem turns read-only mid-run (ext4 with errors=remount-ro on
a loop device, made to meet an error): the metadata API keeps answering, every admin write
and a scheduled-event approval answer 503 with a clear error, the log says so once, and
after the disk is repaired everything the server acknowledged is there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.disks import ext4_disk, fail_into_read_only, remount_after_repair
from tests.support.server import RunningServer, start_server

pytestmark = pytest.mark.root

INSTANCE = "/metadata/instance?api-version=2021-02-01"
EVENTS = "/metadata/scheduledevents?api-version=2020-07-01"
FAILING = "is failing"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with ext4_disk(tmp_path / "disk.img", tmp_path / "disk") as mount:
        yield mount


@pytest.fixture
def server(disk: Path, tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path, state_path=str(disk / "state.db"))
    try:
        attested = running.get("/metadata/attested/document?api-version=2021-02-01")
        assert attested.status_code == 200  # its certificates are written before the test
        yield running
    finally:
        running.stop()


def _schedule(server: RunningServer) -> str:
    body = {"type": "Reboot", "target": "vm:demo-vm", "notBefore": "+3600"}
    created = server.admin("POST", "/events", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["events"][0]["eventId"])


def _writes(event: str, vm: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """A request on every admin route that changes the state (`vm`: the demo VM)."""
    freeze = {"type": "Freeze", "target": "vm:demo-vm"}
    return [
        ("POST", "/events", {"json": freeze}),
        ("POST", "/events/scenario", {"json": {"events": [freeze]}}),
        ("POST", f"/events/{event}/start", {}),
        ("POST", f"/events/{event}/cancel", {}),
        ("POST", "/vms", {"json": vm}),
        ("PUT", "/vms/demo-vm", {"json": vm}),
        ("DELETE", "/vms/demo-vm", {}),
        ("POST", "/identity/keys/rotate", {}),
    ]


def test_a_disk_turned_read_only_refuses_writes_and_loses_nothing(
    server: RunningServer, disk: Path, tmp_path: Path
) -> None:
    event = _schedule(server)
    rotated = server.admin("POST", "/identity/keys/rotate")
    assert rotated.status_code == 200
    vm = server.admin("GET", "/vms/demo-vm").json()
    del vm["revision"]
    vm["instance"]["compute"]["version"] = "acknowledged"
    stored = server.admin("PUT", "/vms/demo-vm", json=vm)  # now a record DELETE must remove
    assert stored.status_code == 200, stored.text
    vm["instance"]["compute"]["version"] = "refused"
    fail_into_read_only(disk)
    assert server.get(INSTANCE).status_code == 200
    listed = server.get(EVENTS)
    assert listed.status_code == 200
    assert [e["EventId"] for e in listed.json()["Events"]] == [event]
    for method, path, kwargs in _writes(event, vm):
        answer = server.admin(method, path, **kwargs)
        assert answer.status_code == 503, (method, path, answer.text)
        error = answer.json()["error"]
        assert error.startswith(f"state store: state database {disk}/state.db: "), error
    approval = server.post_metadata(EVENTS, {"StartRequests": [{"EventId": event}]})
    assert approval.status_code == 503
    assert approval.json() == {
        "error": "Service unavailable. The request could not be saved; retry later. "
        "For more information refer to aka.ms/azureimds"
    }
    assert server.admin("GET", "/events").status_code == 200  # reads still answer
    assert server.get(INSTANCE).status_code == 200
    assert server.output.count(FAILING) == 1, server.output
    assert "Traceback" not in server.output
    server.stop()
    remount_after_repair(tmp_path / "disk.img", disk)
    again = start_server(tmp_path, state_path=server.state_path)
    try:
        kids = [k["kid"] for k in again.admin("GET", "/identity/keys").json()["keys"]]
        assert rotated.json()["kid"] in kids
        assert len(kids) == 2  # the rotation refused during the outage did not happen
        events = again.admin("GET", "/events").json()["events"]
        assert [(e["eventId"], e["state"], e["approvals"]) for e in events] == [
            (event, "Scheduled", [])
        ]
        vms = again.admin("GET", "/vms").json()["vms"]
        assert [v["instance"]["compute"]["version"] for v in vms] == ["acknowledged"]
    finally:
        again.stop()

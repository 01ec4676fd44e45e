"""Two openimds nodes on one PostgreSQL database: a change made on one is served by the
other within a second, pushed by the store's change feed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import jwt

from tests.support.postgres import Cluster
from tests.support.server import RunningServer, start_server

LOCATION = "/metadata/instance/compute/location?api-version=2021-02-01&format=text"
FLEET = """
vms:
  - name: a
    addresses: [127.0.0.1]
    instance: {compute: {name: a, location: westeurope}}
"""


def _from(server: RunningServer, source: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, headers={"Metadata": "true"}) as client:
        return client.get(server.metadata_url + LOCATION)


def _within(seconds: float, check: object) -> float | None:
    """Seconds until `check()` held, or None if it did not within `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if callable(check) and check():
            return time.monotonic() - started
        time.sleep(0.01)
    return None


def test_a_vm_imported_on_one_node_is_served_by_the_other(
    tmp_path: Path, postgres_url: str
) -> None:
    config = tmp_path / "fleet.yaml"
    config.write_text(FLEET)
    a = start_server(tmp_path, config=str(config), state_path=postgres_url)
    b = start_server(tmp_path, config=str(config), state_path=postgres_url)
    try:
        assert _from(b, "127.0.0.2").status_code == 404
        vm = {"name": "c", "addresses": ["127.0.0.2"], "instance": {"compute": {"location": "x"}}}
        assert a.admin("POST", "/vms", json=vm).status_code == 200
        took = _within(1.0, lambda: _from(b, "127.0.0.2").status_code == 200)
        assert took is not None, "node B did not serve the new VM within a second"
        assert _from(b, "127.0.0.2").text == "x"

        changed = {"addresses": ["127.0.0.1"], "instance": {"compute": {"location": "eastus"}}}
        assert b.admin("PUT", "/vms/a", json=changed).status_code == 200
        assert _within(1.0, lambda: _from(a, "127.0.0.1").text == "eastus") is not None

        assert a.admin("DELETE", "/vms/c").status_code == 200
        assert _within(1.0, lambda: _from(b, "127.0.0.2").status_code == 404) is not None
    finally:
        a.stop()
        b.stop()


def test_a_key_rotated_on_one_node_signs_on_the_other(tmp_path: Path, postgres_url: str) -> None:
    a = start_server(tmp_path, state_path=postgres_url)
    b = start_server(tmp_path, state_path=postgres_url)
    try:
        new_kid = a.admin("POST", "/identity/keys/rotate").json()["kid"]

        def b_signs_with_the_new_key() -> bool:
            token = b.get(TOKEN).json()["access_token"]
            return bool(jwt.get_unverified_header(token)["kid"] == new_kid)

        assert _within(1.0, b_signs_with_the_new_key) is not None
        published = {k["kid"] for k in b.admin("GET", "/discovery/keys").json()["keys"]}
        assert new_kid in published and len(published) == 2  # the old key stays published
    finally:
        a.stop()
        b.stop()


TOKEN = (
    "/metadata/identity/oauth2/token?api-version=2018-02-01"
    "&resource=https://management.azure.com/&bypass_cache=true"
)


EVENTS = "/metadata/scheduledevents?api-version=2020-07-01"


def _events(server: RunningServer) -> dict[str, object]:
    answer = server.get(EVENTS)
    assert answer.status_code == 200, answer.text
    document: dict[str, object] = answer.json()
    return document


def _state(server: RunningServer, event_id: str) -> str | None:
    for event in _events(server)["Events"]:  # type: ignore[attr-defined]
        if event["EventId"] == event_id:
            return str(event["EventStatus"])
    return None


def test_scheduled_events_are_one_state_across_nodes(tmp_path: Path, postgres_url: str) -> None:
    a = start_server(tmp_path, state_path=postgres_url)
    b = start_server(tmp_path, state_path=postgres_url)
    try:
        body = {"type": "Reboot", "notBefore": "+10m"}
        event_id = a.admin("POST", "/events", json=body).json()["events"][0]["eventId"]
        assert _within(1.0, lambda: _state(b, event_id) == "Scheduled") is not None
        approval = {"StartRequests": [{"EventId": event_id}]}
        posted = httpx.post(b.metadata_url + EVENTS, json=approval, headers={"Metadata": "true"})
        assert posted.status_code == 200
        assert _within(1.0, lambda: _state(a, event_id) == "Started") is not None
        incarnation = _events(a)["DocumentIncarnation"]
        assert _within(1.0, lambda: _events(b)["DocumentIncarnation"] == incarnation)

        # Node A dies while an event falls due; node B carries it on alone.
        due = {"type": "Freeze", "notBefore": "+2s", "completeAfter": 0, "durationInSeconds": 1}
        second = a.admin("POST", "/events", json=due).json()["events"][0]["eventId"]
        a.stop(signal.SIGKILL)
        assert _within(5.0, lambda: _state(b, second) == "Started") is not None
        assert _within(5.0, lambda: _state(b, second) is None) is not None  # then removed
        assert _events(b)["DocumentIncarnation"] > incarnation  # type: ignore[operator]
    finally:
        a.stop()
        b.stop()


def test_a_database_outage_keeps_reads_refuses_writes_and_recovers(
    tmp_path: Path, postgres_url: str, postgres_cluster: Cluster
) -> None:
    node = start_server(tmp_path, state_path=postgres_url)
    try:
        token = node.get(TOKEN.replace("&bypass_cache=true", "")).json()["access_token"]
        body = {"type": "Reboot", "notBefore": "+10m"}
        event_id = node.admin("POST", "/events", json=body).json()["events"][0]["eventId"]
        postgres_cluster.stop()
        try:
            document = "/metadata/instance?api-version=2021-02-01"
            assert node.get(document).status_code == 200
            cached = node.get(TOKEN.replace("&bypass_cache=true", "")).json()["access_token"]
            assert cached == token  # cached tokens keep coming from memory
            assert _state(node, event_id) == "Scheduled"
            change = {"instance": {"compute": {"name": "demo-vm", "location": "x"}}}
            refused = node.admin("PUT", "/vms/demo-vm", json=change)
            assert refused.status_code == 503
            assert refused.json()["error"].startswith("state store: ")
            assert node.admin("POST", "/events", json=body).status_code == 503
        finally:
            postgres_cluster.start()

        def writes_work() -> bool:
            return node.admin("POST", "/events", json=body).status_code == 201

        assert _within(10.0, writes_work) is not None
        assert _state(node, event_id) == "Scheduled"  # acknowledged before: still there
        assert node.output.count("unreachable") == 1  # the outage is logged once
    finally:
        node.stop()

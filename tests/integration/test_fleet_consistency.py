"""Two nodes on one PostgreSQL never disagree: racing writes through both are decided by
the store (one wins, the other gets 409 or 412 and changes nothing), both nodes then
serve the same VMs, a node restarts on what the store holds, and a change written right
after the database comes back reaches the other node (docs/fleet.md, consistency)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import Cluster
from tests.support.server import RunningServer, start_server

LOCATION = "/metadata/instance/compute/location?api-version=2021-02-01&format=text"


def _vm(address: str, location: str = "westeurope") -> dict[str, object]:
    return {"addresses": [address], "instance": {"compute": {"location": location}}}


def _put(node: RunningServer, path: str, body: object, **headers: str) -> httpx.Response:
    return node.admin("PUT", path, json=body, headers=headers)


def _race(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """The calls at one moment (as near as two threads get), their answers in order."""
    start = threading.Barrier(len(calls))
    answers: list[httpx.Response | None] = [None] * len(calls)

    def run(index: int) -> None:
        start.wait()
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [answer for answer in answers if answer is not None]


def _names(node: RunningServer) -> list[str]:
    return sorted(vm["name"] for vm in node.admin("GET", "/vms").json()["vms"])


def _within(seconds: float, check: Callable[[], bool]) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.01)
    return None


def _from(node: RunningServer, source: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, headers={"Metadata": "true"}) as client:
        return client.get(node.metadata_url + LOCATION)


def _serve_alike(nodes: tuple[RunningServer, ...], name: str, addresses: list[str]) -> bool:
    views = [node.admin("GET", f"/vms/{name}") for node in nodes]
    return all(v.status_code == 200 and v.json()["addresses"] == addresses for v in views)


@pytest.fixture
def two(tmp_path: Path, postgres_url: str) -> Iterator[tuple[RunningServer, RunningServer]]:
    a = start_server(tmp_path, state_path=postgres_url)
    b = start_server(tmp_path, state_path=postgres_url)
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_one_address_raced_through_two_nodes_goes_to_one_vm(
    tmp_path: Path, two: tuple[RunningServer, RunningServer]
) -> None:
    a, b = two
    for attempt in range(10):
        address = f"127.0.20.{attempt + 1}"
        answers = _race(
            functools.partial(_put, a, f"/vms/ra{attempt}", _vm(address)),
            functools.partial(_put, b, f"/vms/rb{attempt}", _vm(address)),
        )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201, 409], (attempt, [answer.text for answer in answers])
        lost = next(answer for answer in answers if answer.status_code == 409)
        winner = next(answer for answer in answers if answer.status_code == 201).json()["name"]
        assert lost.json()["error"].startswith(f"address {address} is held by VM {winner}")
    assert _within(1.0, lambda: _names(a) == _names(b)) is not None
    assert len(_names(a)) == 10  # one VM per address, none twice
    restarted = start_server(tmp_path, state_path=b.state_path)  # a third node starts too
    try:
        assert _names(restarted) == _names(a)
    finally:
        restarted.stop()
    b.stop()
    again = start_server(tmp_path, state_path=a.state_path)  # and a node restarts
    again.stop()


def test_an_add_raced_through_two_nodes_is_added_once(
    two: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two
    for attempt in range(10):
        name = f"same{attempt}"
        fresh = {"If-None-Match": "*"}
        answers = _race(
            functools.partial(_put, a, f"/vms/{name}", _vm(f"127.0.21.{attempt + 1}"), **fresh),
            functools.partial(_put, b, f"/vms/{name}", _vm(f"127.0.22.{attempt + 1}"), **fresh),
        )
        assert sorted(answer.status_code for answer in answers) == [201, 412], attempt
        refused = next(answer for answer in answers if answer.status_code == 412)
        assert refused.json() == {"error": f"VM {name} exists already"}
        kept = next(answer for answer in answers if answer.status_code == 201).json()

        both_serve_it = functools.partial(_serve_alike, (a, b), name, kept["addresses"])
        assert _within(1.0, both_serve_it) is not None
    assert _names(a) == _names(b)


def test_a_change_right_after_a_database_restart_reaches_the_other_node(
    two: tuple[RunningServer, RunningServer], postgres_cluster: Cluster
) -> None:
    a, b = two
    assert a.admin("PUT", "/vms/first", json=_vm("127.0.23.1")).status_code == 201
    assert _within(1.0, lambda: _from(b, "127.0.23.1").status_code == 200) is not None
    postgres_cluster.stop()
    try:
        assert _within(5.0, lambda: b.admin("GET", "/readyz").status_code == 503) is not None
        ready = b.admin("GET", "/readyz").json()
        assert ready["status"] == "not ready" and ready["store"]["reachable"] is False
        assert b.admin("GET", "/healthz").json()["ready"] is False
        assert _from(b, "127.0.23.1").status_code == 200  # reads keep coming from memory
    finally:
        postgres_cluster.start()

    def written() -> bool:
        return a.admin("PUT", "/vms/second", json=_vm("127.0.23.2")).status_code == 201

    assert _within(15.0, written) is not None
    took = _within(2.0, lambda: _from(b, "127.0.23.2").status_code == 200)
    assert took is not None, "node B did not serve a change written after the outage"
    print(f"served by the other node {took * 1000:.0f} ms after the write was acknowledged")
    assert _within(2.0, lambda: b.admin("GET", "/readyz").status_code == 200) is not None
    assert b.admin("GET", "/healthz").json() == {"status": "ok", "ready": True, "vms": 2}
    assert b.output.count("a change from the state store could not be read yet") == 0

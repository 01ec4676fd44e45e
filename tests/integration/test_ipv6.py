"""The metadata listener on IPv6 loopback, with a VM claimed by its IPv6 source address."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support.rawhttp import RawConnection, get
from tests.support.server import start_server

FLEET = """
vms:
  - addresses: ["::1"]
    instance: {compute: {name: vm-six}}
  - addresses: [127.0.0.2]
    instance: {compute: {name: vm-four}}
"""


def test_ipv6_listener_resolves_ipv6_callers(tmp_path: Path) -> None:
    config = tmp_path / "fleet.yaml"
    config.write_text(FLEET)
    running = start_server(tmp_path, config=str(config), args=["--listen", "[::1]:0"])
    try:
        assert running.metadata_url.startswith("http://[::1]:")
        with RawConnection(running.metadata_url) as conn:
            conn.send(get("/metadata/instance/compute/name?api-version=2021-02-01&format=text"))
            response = conn.read_response()
            assert response.status == 200
            assert response.body == b"vm-six"
    finally:
        assert running.stop() == 0
    access = [json.loads(x) for x in running.output.splitlines() if '"event":"access"' in x]
    assert access[0]["peer"] == "::1"
    assert access[0]["vm"] == "vm-six"


DUAL = """
vms:
  - addresses: ["::1"]
    instance: {compute: {name: vm-six}}
  - addresses: [127.0.0.1]
    instance: {compute: {name: vm-four}}
"""
NAME = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"


def _name_seen_from(host: str, port: int) -> bytes:
    with RawConnection(f"http://{host}:{port}") as conn:
        conn.send(get(NAME))
        response = conn.read_response()
        assert response.status == 200
        return response.body


def test_wildcard_ipv6_listener_is_dual_stack(tmp_path: Path) -> None:
    """`[::]` takes IPv4 callers too (as ::ffff:a.b.c.d), so one listener serves a fleet
    whose VMs call from IPv4 and IPv6 addresses; the admin listener likewise."""
    config = tmp_path / "fleet.yaml"
    config.write_text(DUAL)
    running = start_server(
        tmp_path, config=str(config), args=["--listen", "[::]:0", "--admin-listen", "[::]:0"]
    )
    try:
        port = int(running.metadata_url.rsplit(":", 1)[1])
        assert _name_seen_from("127.0.0.1", port) == b"vm-four"
        assert _name_seen_from("[::1]", port) == b"vm-six"
        admin_port = int(running.admin_url.rsplit(":", 1)[1])
        for host in ("127.0.0.1", "[::1]"):
            assert httpx.get(f"http://{host}:{admin_port}/healthz").status_code == 200
    finally:
        assert running.stop() == 0

"""The metadata listener on IPv6 loopback, with a VM claimed by its IPv6 source address."""

from __future__ import annotations

import json
from pathlib import Path

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

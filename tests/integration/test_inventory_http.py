"""The VM inventory through the admin API, over real sockets: applied without a restart,
one VM's change invalidating only that VM, validated as the config file is, persisted."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.server import RunningServer, start_server

FLEET = """
vms:
  - name: a
    addresses: [127.0.0.1]
    instance: {compute: {name: a, location: westeurope}}
  - name: b
    addresses: [127.0.0.2]
    instance: {compute: {name: b, location: westeurope}}
"""
LOCATION = "/metadata/instance/compute/location?api-version=2021-02-01&format=text"


def _from(server: RunningServer, source: str, path: str = LOCATION) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, headers={"Metadata": "true"}) as client:
        return client.get(server.metadata_url + path)


def _revisions(server: RunningServer) -> dict[str, int]:
    return {vm["name"]: vm["revision"] for vm in server.admin("GET", "/vms").json()["vms"]}


def _fleet(tmp_path: Path, **kwargs: object) -> RunningServer:
    config = tmp_path / "fleet.yaml"
    config.write_text(FLEET)
    return start_server(tmp_path, config=str(config), **kwargs)  # type: ignore[arg-type]


def test_vms_are_added_changed_and_removed_live(tmp_path: Path) -> None:
    server = _fleet(tmp_path)
    try:
        assert _from(server, "127.0.0.3").status_code == 404  # unknown caller
        new = {"name": "c", "addresses": ["127.0.0.3"], "instance": {"compute": {"location": "x"}}}
        imported = server.admin("POST", "/vms", json=new)
        assert imported.json() == {"changed": ["c"], "unchanged": []}
        assert _from(server, "127.0.0.3").text == "x"  # served at once

        assert _from(server, "127.0.0.1").text == "westeurope"  # now cached for a
        before = _revisions(server)
        body = {"addresses": ["127.0.0.2"], "instance": {"compute": {"location": "eastus"}}}
        assert server.admin("PUT", "/vms/b", json=body).status_code == 200
        after = _revisions(server)
        assert after["b"] > before["b"]
        assert after["a"] == before["a"] and after["c"] == before["c"]  # only b changed
        assert _from(server, "127.0.0.2").text == "eastus"
        assert _from(server, "127.0.0.1").text == "westeurope"

        assert server.admin("DELETE", "/vms/c").json() == {"name": "c", "removed": True}
        assert _from(server, "127.0.0.3").status_code == 404
        assert server.admin("DELETE", "/vms/c").status_code == 404
    finally:
        server.stop()


def test_bad_vms_get_the_config_files_messages(tmp_path: Path) -> None:
    server = _fleet(tmp_path)
    try:
        typo = {"addresses": ["127.0.0.9"], "instance": {"compute": {"vmsize": "B2s"}}}
        answer = server.admin("PUT", "/vms/d", json=typo)
        assert answer.status_code == 400
        assert answer.json()["error"].startswith(
            "request body: instance.compute.vmsize: unknown field 'vmsize' (did you mean 'vmSize'?)"
        )
        clash = {"addresses": ["127.0.0.1"]}
        answer = server.admin("PUT", "/vms/d", json=clash)
        assert answer.status_code == 409
        assert answer.json() == {"error": "address 127.0.0.1 is held by VM a; VM d was not written"}
        answer = server.admin("PUT", "/vms/d", json={"instance": {}})
        assert answer.status_code == 409
        assert "every VM must list the `addresses`" in answer.json()["error"]
        exists = server.admin(
            "PUT", "/vms/a", json={"addresses": ["127.0.0.1"]}, headers={"If-None-Match": "*"}
        )
        assert (exists.status_code, exists.json()) == (412, {"error": "VM a exists already"})
        missing = server.admin(
            "PUT", "/vms/z", json={"addresses": ["127.0.0.7"]}, headers={"If-Match": "*"}
        )
        assert (missing.status_code, missing.json()) == (412, {"error": "no VM named z"})
        other = server.admin("PUT", "/vms/a", json={"name": "b", "addresses": ["127.0.0.8"]})
        assert other.json() == {"error": "request body: expected the one VM named a"}
        assert server.admin("POST", "/vms", content=b"{nope").status_code == 400
        assert sorted(_revisions(server)) == ["a", "b"]  # nothing refused was applied
    finally:
        server.stop()


def test_the_inventory_survives_a_restart_and_a_config_without_vms(tmp_path: Path) -> None:
    server = _fleet(tmp_path)
    try:
        extra = {"name": "c", "addresses": ["127.0.0.3"], "instance": {"compute": {}}}
        assert server.admin("POST", "/vms", json=extra).status_code == 200
    finally:
        server.stop()
    bare = tmp_path / "bare.yaml"
    bare.write_text("vms: []\n")
    again = start_server(tmp_path, config=str(bare), state_path=server.state_path)
    try:
        assert sorted(_revisions(again)) == ["a", "b", "c"]
        assert _from(again, "127.0.0.3").status_code == 200
    finally:
        again.stop()


def test_a_short_vm_file_serves_its_name_and_a_vm_id_kept_across_restarts(
    tmp_path: Path,
) -> None:
    config = tmp_path / "short.yaml"
    config.write_text("vms:\n  - {name: web-1, addresses: [127.0.0.1]}\n")
    compute = "/metadata/instance/compute?api-version=2021-02-01"
    server = start_server(tmp_path, config=str(config))
    try:
        first = _from(server, "127.0.0.1", compute).json()
        assert first["name"] == "web-1"
        assert len(first["vmId"]) == 36 and first["vmId"].count("-") == 4
        assert _from(server, "127.0.0.1", compute).json()["vmId"] == first["vmId"]  # cached
    finally:
        server.stop()
    again = start_server(tmp_path, config=str(config), state_path=server.state_path)
    try:
        assert _from(again, "127.0.0.1", compute).json()["vmId"] == first["vmId"]
    finally:
        again.stop()

"""`openimds vm ...` against a real server: the inventory changed from the command line,
served at once, refused in the config file's words, and exported in a form `vm import`
takes back (into another server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.server import RunningServer, start_server

FLEET = """
vms:
  - name: a
    addresses: [127.0.0.1]
    instance: {compute: {name: a, location: westeurope, vmSize: Standard_B2s}}
  - name: b
    addresses: [127.0.0.2]
    instance: {compute: {name: b, location: westeurope}}
"""
LOCATION = "/metadata/instance/compute/location?api-version=2021-02-01&format=text"


def _location(server: RunningServer, source: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, headers={"Metadata": "true"}) as client:
        return client.get(server.metadata_url + LOCATION)


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _ok(server: RunningServer, *args: str, stdin: str | None = None) -> str:
    result = server.cli(*args, stdin=stdin)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


def _refused(server: RunningServer, *args: str, code: int = 1, stdin: str | None = None) -> str:
    result = server.cli(*args, stdin=stdin)
    assert result.returncode == code
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[RunningServer]:
    config = _file(tmp_path, "fleet.yaml", FLEET)
    server = start_server(tmp_path, config=config)
    yield server
    server.stop()


def test_vms_are_imported_changed_and_removed_and_served_at_once(
    fleet: RunningServer, tmp_path: Path
) -> None:
    assert _location(fleet, "127.0.0.3").status_code == 404
    new = _file(
        tmp_path, "c.yaml", "name: c\naddresses: [127.0.0.3]\ninstance: {compute: {location: x}}\n"
    )
    assert _ok(fleet, "vm", "import", new) == "added  c\n"
    assert _location(fleet, "127.0.0.3").text == "x"  # served at once
    assert _ok(fleet, "vm", "import", new) == "unchanged  c\n"  # idempotent

    assert _location(fleet, "127.0.0.2").text == "westeurope"  # now cached for b
    moved = "name: b\naddresses: [127.0.0.2]\ninstance: {compute: {location: eastus}}\n"
    assert _ok(fleet, "vm", "update", _file(tmp_path, "b.yaml", moved)) == "updated  b\n"
    # Again: nothing changed, worded as `vm import` words it.
    assert _ok(fleet, "vm", "update", _file(tmp_path, "b.yaml", moved)) == "unchanged  b\n"
    assert _location(fleet, "127.0.0.2").text == "eastus"

    assert _ok(fleet, "vm", "remove", "c") == "removed  c\n"
    assert _location(fleet, "127.0.0.3").status_code == 404
    added = _file(tmp_path, "d.json", json.dumps({"name": "d", "addresses": ["127.0.0.4"]}))
    assert _ok(fleet, "vm", "add", added) == "added  d\n"
    assert _location(fleet, "127.0.0.4").status_code == 200


def test_list_and_show(fleet: RunningServer) -> None:
    assert _ok(fleet, "vm", "list").splitlines() == [
        "NAME  SIZE          LOCATION    ADDRESSES  REVISION",
        "a     Standard_B2s  westeurope  127.0.0.1  1",
        "b     -             westeurope  127.0.0.2  2",
    ]
    listed = json.loads(_ok(fleet, "vm", "list", "--json"))
    assert [vm["name"] for vm in listed["vms"]] == ["a", "b"]
    shown = yaml.safe_load(_ok(fleet, "vm", "show", "a"))
    assert shown == {
        "name": "a",
        "addresses": ["127.0.0.1"],
        "instance": {"compute": {"location": "westeurope", "name": "a", "vmSize": "Standard_B2s"}},
    }
    assert json.loads(_ok(fleet, "vm", "show", "a", "--json")) == shown
    assert _refused(fleet, "vm", "show", "zz") == "openimds: no VM named zz (404)\n"


def test_an_export_is_imported_into_another_server_unchanged(
    fleet: RunningServer, tmp_path: Path
) -> None:
    exported = _ok(fleet, "vm", "export")
    assert [vm["name"] for vm in yaml.safe_load(exported)["vms"]] == ["a", "b"]
    only_b = yaml.safe_load(_ok(fleet, "vm", "export", "--name", "b"))
    assert [vm["name"] for vm in only_b["vms"]] == ["b"]
    path = _file(tmp_path, "export.yaml", exported)

    (tmp_path / "other").mkdir(mode=0o700)  # it holds a state store: private
    other = start_server(tmp_path / "other")
    try:
        # A server started without VMs serves the demo VM, which lists no addresses.
        assert _ok(other, "vm", "remove", "demo-vm") == "removed  demo-vm\n"
        assert _ok(other, "vm", "import", path) == "added  a\nadded  b\n"
        assert _ok(other, "vm", "export") == exported
        assert _ok(other, "vm", "export", "--json") == _ok(fleet, "vm", "export", "--json")
        assert _location(other, "127.0.0.1").text == "westeurope"
        assert _ok(other, "vm", "import", path) == "unchanged  a\nunchanged  b\n"
    finally:
        other.stop()


def test_bad_files_get_one_clear_message(fleet: RunningServer, tmp_path: Path) -> None:
    broken = _file(tmp_path, "broken.yaml", "name: c\ninstance: {compute: [\n")
    err = _refused(fleet, "vm", "import", broken, code=2)
    assert err.startswith(f"openimds: {broken}:3:1: not valid YAML or JSON: ")
    assert err.count("\n") == 1

    typo = _file(
        tmp_path,
        "typo.yaml",
        "name: c\naddresses: [127.0.0.3]\ninstance: {compute: {vmsize: B2s}}\n",
    )
    err = _refused(fleet, "vm", "add", typo)
    assert err.startswith(
        f"openimds: {typo}: instance.compute.vmsize: unknown field 'vmsize' "
        "(did you mean 'vmSize'?)"
    )
    assert err.endswith(" (400)\n") and err.count("\n") == 1

    listed = _file(tmp_path, "listed.yaml", "vms:\n  - name: c\n    addresses: [not-an-ip]\n")
    assert _refused(fleet, "vm", "import", listed) == (
        f"openimds: {listed}: vms[0].addresses[0]: expected an IPv4 or IPv6 address, "
        "got 'not-an-ip' (400)\n"
    )
    clash = _file(tmp_path, "clash.yaml", "name: c\naddresses: [127.0.0.1]\n")
    assert _refused(fleet, "vm", "import", clash) == (
        "openimds: address 127.0.0.1 is held by VM a; VM c was not written (409)\n"
    )
    exists = _file(tmp_path, "a.yaml", "name: a\naddresses: [127.0.0.1]\n")
    assert _refused(fleet, "vm", "add", exists) == "openimds: VM a exists already (412)\n"
    missing = _file(tmp_path, "z.yaml", "name: z\naddresses: [127.0.0.9]\n")
    assert _refused(fleet, "vm", "update", missing) == "openimds: no VM named z (412)\n"
    two = _file(tmp_path, "two.yaml", "vms: [{name: x}, {name: y}]\n")
    assert _refused(fleet, "vm", "add", two) == (
        f"openimds: {two}: holds 2 VMs; `vm add` takes one (`vm import` takes many)\n"
    )
    assert _refused(fleet, "vm", "remove", "a", "nope") == (
        "openimds: no VM named nope; nothing removed (404)\n"  # the server's one batch says so
    )
    # Nothing refused was applied.
    assert [vm["name"] for vm in json.loads(_ok(fleet, "vm", "list", "--json"))["vms"]] == [
        "a",
        "b",
    ]


def test_a_configuration_files_settings_are_left_out_with_a_note(
    fleet: RunningServer, tmp_path: Path
) -> None:
    config = "server: {listen: 127.0.0.1:80}\nvms:\n  - {name: c, addresses: [127.0.0.3]}\n"
    result = fleet.cli("vm", "import", _file(tmp_path, "config.yaml", config))
    assert result.returncode == 0
    assert result.stdout == "added  c\n"
    assert result.stderr.endswith("config.yaml: settings left out (not VMs): server\n")


def test_a_name_no_route_could_carry_is_refused_saying_which_characters_a_name_holds(
    fleet: RunningServer, tmp_path: Path
) -> None:
    slashed = _file(tmp_path, "s.yaml", 'name: "a/b"\naddresses: [127.0.1.4]\n')
    err = _refused(fleet, "vm", "import", slashed)
    assert err.startswith(f"openimds: {slashed}: name: 'a/b': a VM name holds 1 to 64 letters")
    assert err.endswith(" (400)\n") and err.count("\n") == 1
    for body in ({"name": "a/b", "addresses": ["127.0.1.4"]}, {"vms": [{"name": "web-"}]}):
        answer = fleet.admin("POST", "/vms", json=body)
        assert answer.status_code == 400
        assert "hyphens, underscores and periods" in answer.json()["error"]
    assert [vm["name"] for vm in json.loads(_ok(fleet, "vm", "list", "--json"))["vms"]] == [
        "a",
        "b",
    ]


def test_an_export_carries_the_generated_identity_ids_to_another_server(
    fleet: RunningServer, tmp_path: Path
) -> None:
    given = _file(
        tmp_path,
        "c.yaml",
        "name: c\naddresses: [127.0.0.3]\nidentities: {systemAssigned: {}, userAssigned: [{}]}\n",
    )
    assert _ok(fleet, "vm", "import", given) == "added  c\n"
    exported = _ok(fleet, "vm", "export", "--name", "c")
    ids = fleet.admin("GET", "/identity/vms").json()["vms"]
    effective = next(vm["identities"] for vm in ids if vm["name"] == "c")
    block = yaml.safe_load(exported)["vms"][0]["identities"]
    assert block["tenantId"] == effective["tenantId"]
    assert block["systemAssigned"] == {
        key: effective["systemAssigned"][key] for key in ("clientId", "objectId")
    }
    assert block["userAssigned"] == effective["userAssigned"]

    (tmp_path / "other").mkdir(mode=0o700)
    other = start_server(tmp_path / "other")
    try:
        assert _ok(other, "vm", "remove", "demo-vm") == "removed  demo-vm\n"
        assert _ok(other, "vm", "import", _file(tmp_path, "e.yaml", exported)) == "added  c\n"
        there = other.admin("GET", "/identity/vms").json()["vms"]
        assert next(vm["identities"] for vm in there if vm["name"] == "c") == effective
        # The vmId the first server generated is the one the VM keeps.
        assert _vm_id(other, "c") == _vm_id(fleet, "c")
        assert yaml.safe_load(exported)["vms"][0]["instance"]["compute"]["vmId"] == _vm_id(
            fleet, "c"
        )
        assert _ok(other, "vm", "export") == exported
    finally:
        other.stop()


def _vm_id(server: RunningServer, name: str) -> str:
    rows = server.admin("GET", "/vms", params={"view": "summary"}).json()["vms"]
    return str(next(row["vmId"] for row in rows if row["name"] == name))


def _vms(count: int, start: int = 10, tag: str = "web") -> str:
    lines = ["vms:"]
    for n in range(start, start + count):
        lines += [
            f"  - name: v{n}",
            f"    addresses: [127.0.5.{n}]",
            f"    instance: {{compute: {{name: v{n}, tags: 'role:{tag}'}}}}",
        ]
    return "\n".join(lines) + "\n"


def _names(server: RunningServer, *selectors: str) -> list[str]:
    listed = json.loads(_ok(server, "vm", "list", "--json", *selectors))["vms"]
    return [vm["name"] for vm in listed]


def test_bulk_remove_is_all_or_nothing_and_by_selector(fleet: RunningServer) -> None:
    assert _ok(fleet, "vm", "import", "-", stdin=_vms(3) + _vms(2, 20, "db")[4:]) == (
        "added  v10\nadded  v11\nadded  v12\nadded  v20\nadded  v21\n"
    )
    assert _names(fleet, "--tag", "role=db") == ["v20", "v21"]
    assert _names(fleet, "--q", "v1") == ["v10", "v11", "v12"]
    # One unknown name: nothing is removed.
    err = _refused(fleet, "vm", "remove", "v10", "nobody", "v11")
    assert err == "openimds: no VM named nobody; nothing removed (404)\n"
    assert _names(fleet, "--q", "v1") == ["v10", "v11", "v12"]
    assert _ok(fleet, "vm", "remove", "v10", "v11") == "removed  v10\nremoved  v11\n"
    # A selector asks first; no is no.
    refused = fleet.cli("vm", "remove", "--tag", "role=db", stdin="n\n")
    assert refused.returncode == 1 and "remove 2 VM(s): v20, v21?" in refused.stderr
    assert _names(fleet, "--tag", "role=db") == ["v20", "v21"]
    assert _ok(fleet, "vm", "remove", "--tag", "role=db", "--yes") == (
        "removed  v20\nremoved  v21\n"
    )
    assert _refused(fleet, "vm", "remove", code=2).startswith("openimds: give NAME...")
    assert _ok(fleet, "vm", "remove", "--all", "--yes") == "removed  a\nremoved  b\nremoved  v12\n"
    assert _names(fleet) == []


def test_import_prune_makes_the_inventory_match_the_file(
    fleet: RunningServer, tmp_path: Path
) -> None:
    path = _file(tmp_path, "only.yaml", _vms(2))
    assert _ok(fleet, "vm", "import", "--prune", path) == (
        "added  v10\nadded  v11\nremoved  a\nremoved  b\n"
    )
    assert _names(fleet) == ["v10", "v11"]
    assert _ok(fleet, "vm", "import", "--prune", path) == "unchanged  v10\nunchanged  v11\n"
    broken = "vms:\n  - name: c\n    addresses: [not-an-ip]\n"
    err = _refused(fleet, "vm", "import", "-", "--prune", stdin=broken)
    assert err.startswith("openimds: stdin: vms[0].addresses[0]"), err
    assert _names(fleet) == ["v10", "v11"]  # refused: nothing pruned either

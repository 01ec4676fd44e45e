"""GET /metadata/instance: every api-version x a set of paths x both formats (3-4).

Expected values come from the reference VM file itself (src/openimds/data/demo-vm.json),
not from the core, so a wrong walk or a wrong gate shows up as a difference.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from openimds.core.http import JSON, TEXT
from openimds.core.versions import GENERAL_VERSIONS
from tests.support.imds import (
    LEAF_BODY,
    NOT_FOUND_BODY,
    call,
    reference_vm,
    reference_vm_data,
    vm_from,
)

DATA = reference_vm_data()["instance"]

# (route, version the route's first segment below /instance appeared in)
CONTAINERS = [
    ("", "2017-03-01"),
    ("compute", "2017-03-01"),
    ("network", "2017-03-01"),
    ("network/interface", "2017-03-01"),
    ("network/interface/0", "2017-03-01"),
    ("network/interface/0/ipv4/ipAddress", "2017-03-01"),
    ("network/interface/0/ipv4/subnet/0", "2017-03-01"),
    ("compute/publicKeys", "2018-04-02"),
    ("compute/publicKeys/0", "2018-04-02"),
    ("compute/plan", "2018-04-02"),
    ("compute/storageProfile", "2019-06-01"),
    ("compute/storageProfile/osDisk/managedDisk", "2019-06-01"),
    ("compute/tagsList", "2019-06-04"),
    ("compute/securityProfile", "2020-06-01"),
    ("compute/osProfile", "2020-07-15"),
    ("compute/storageProfile/resourceDisk", "2021-02-01"),
    ("compute/additionalCapabilities", "2021-11-01"),
]
LEAVES = [
    ("compute/vmId", "2017-03-01"),
    ("compute/vmSize", "2017-03-01"),
    ("compute/platformFaultDomain", "2017-03-01"),
    ("network/interface/0/macAddress", "2017-03-01"),
    ("network/interface/0/ipv4/ipAddress/0/privateIpAddress", "2017-03-01"),
    ("network/interface/0/ipv4/ipAddress/0/publicIpAddress", "2017-03-01"),
    ("network/interface/0/ipv4/subnet/0/prefix", "2017-03-01"),
    ("compute/tags", "2017-08-01"),
    ("compute/zone", "2017-12-01"),
    ("compute/publicKeys/0/keyData", "2018-04-02"),
    ("compute/azEnvironment", "2018-10-01"),
    ("compute/resourceId", "2019-03-11"),
    ("compute/storageProfile/osDisk/diskSizeGB", "2019-06-01"),
    ("compute/tagsList/1/value", "2019-06-04"),
    ("compute/osProfile/adminUsername", "2020-07-15"),
    ("compute/osProfile/disablePasswordAuthentication", "2020-10-01"),
    ("compute/priority", "2020-12-01"),
    ("compute/userData", "2021-01-01"),
    ("compute/storageProfile/resourceDisk/size", "2021-02-01"),
    ("compute/storageProfile/dataDisks/0/isUltraDisk", "2021-05-01"),
    ("compute/securityProfile/securityType", "2021-12-13"),
    ("compute/storageProfile/imageReference/exactVersion", "2023-07-01"),
    ("compute/physicalZone", "2023-11-15"),
]
FORMATS = [None, "json", "text"]


def target(route: str, version: str, fmt: str | None) -> str:
    path = "/metadata/instance" + (f"/{route}" if route else "")
    query = f"?api-version={version}" + (f"&format={fmt}" if fmt else "")
    return path + query


def raw(route: str) -> Any:
    """The value at a route in the VM file, walked by hand."""
    node: Any = DATA
    for segment in filter(None, route.split("/")):
        node = node[int(segment)] if isinstance(node, list) else node[segment]
    return node


def available(since: str, version: str) -> bool:
    # 2017-03-01, the preview, serves the 2017-04-02 schema (2.1).
    return max(version, "2017-04-02") >= since


@pytest.mark.parametrize("version", GENERAL_VERSIONS)
@pytest.mark.parametrize(("route", "since"), CONTAINERS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_containers(version: str, route: str, since: str, fmt: str | None) -> None:
    response = call(target(route, version, fmt))
    if not available(since, version):
        assert (response.status, response.body) == (404, NOT_FOUND_BODY)
        return
    assert response.status == 200
    assert response.cacheable
    full = json.loads(call(target("", version, None)).body)
    subtree: Any = full
    for segment in filter(None, route.split("/")):
        subtree = subtree[int(segment)] if isinstance(subtree, list) else subtree[segment]
    if fmt == "text":
        assert response.content_type == TEXT
        children = subtree.items() if isinstance(subtree, dict) else enumerate(subtree)
        expected = [f"{k}{'' if isinstance(v, str) else '/'}" for k, v in children]
        assert response.body.decode().split("\n") == (expected or [""])
    else:
        assert response.content_type == JSON
        # Compact, one line, keys in the order of the full document (4).
        assert response.body == json.dumps(subtree, separators=(",", ":")).encode()


@pytest.mark.parametrize("version", GENERAL_VERSIONS)
@pytest.mark.parametrize(("route", "since"), LEAVES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_leaves(version: str, route: str, since: str, fmt: str | None) -> None:
    response = call(target(route, version, fmt))
    if not available(since, version):
        assert (response.status, response.body) == (404, NOT_FOUND_BODY)
    elif fmt == "text":
        assert (response.status, response.content_type) == (200, TEXT)
        assert response.body.decode() == raw(route)
    else:
        # 4 / I-15283: a leaf answers only to format=text.
        assert (response.status, response.body) == (400, LEAF_BODY)
        assert response.content_type == JSON


def test_subtrees_have_no_wrapper() -> None:
    compute = json.loads(call(target("compute", "2021-02-01", None)).body)
    assert "compute" not in compute
    assert compute["vmId"] == DATA["compute"]["vmId"]
    interface = json.loads(call(target("network/interface/0", "2021-02-01", None)).body)
    assert interface["macAddress"] == "6045BDA5B2C1"


def test_tags_list_is_a_bare_array() -> None:
    # 3.6: tagsList in JSON is the array itself.
    body = json.loads(call(target("compute/tagsList", "2019-06-04", None)).body)
    assert body == [
        {"name": "environment", "value": "demo"},
        {"name": "owner", "value": "openimds"},
    ]


def test_text_on_tags_list_lists_indexes() -> None:
    # I-39437: text on tagsList is no JSON; one must index further.
    response = call(target("compute/tagsList", "2021-02-01", "text"))
    assert response.body == b"0/\n1/"
    assert call(target("compute/tagsList/0/name", "2021-02-01", "text")).body == b"environment"


def test_text_root_lists_compute_and_network() -> None:
    assert call(target("", "2021-02-01", "text")).body == b"compute/\nnetwork/"


def test_text_leaf_has_no_trailing_newline() -> None:
    assert call(target("compute/name", "2021-02-01", "text")).body == b"demo-vm"


def test_empty_leaf_in_text_is_an_empty_200() -> None:
    response = call(target("compute/placementGroupId", "2021-02-01", "text"))
    assert (response.status, response.body, response.content_type) == (200, b"", TEXT)


def test_empty_array_in_text_is_an_empty_200() -> None:
    response = call(target("network/interface/0/ipv6/ipAddress", "2021-02-01", "text"))
    assert (response.status, response.body) == (200, b"")
    assert call(target("network/interface/0/ipv6/ipAddress", "2021-02-01", None)).body == b"[]"


def test_user_data_is_served_base64_as_given() -> None:
    response = call(target("compute/userData", "2021-01-01", "text"))
    assert response.body == b"IyEvYmluL3NoCmVjaG8gImhlbGxvIGZyb20gb3BlbmltZHMiCg=="


@pytest.mark.parametrize(
    "route",
    [
        "compute/vmid",  # queries are case-sensitive (AD-IMDS-17)
        "Compute",
        "compute/nosuchfield",
        "network/interface/1",  # index out of range
        "network/interface/99999999999999999999",
        "network/interface/01",  # not a canonical index
        "network/interface/-1",
        "network/interface/+0",
        "network/interface/%C2%B2",  # "²": a digit to str.isdigit, not an index
        "network/interface/%D9%A0",  # Arabic-Indic zero
        "network/interface/first",  # a key on an array
        "network/interface/0/ipv4/ipAddress/1",
        "compute/vmId/0",  # below a leaf
        "compute/vmId/x",
        "compute/tagsList/2/name",
        "compute/licenseType",  # omitted when empty
    ],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_elements_are_404(route: str, fmt: str | None) -> None:
    response = call(target(route, "2025-04-07", fmt))
    assert (response.status, response.body, response.content_type) == (404, NOT_FOUND_BODY, JSON)


def test_trailing_slash_is_the_same_resource() -> None:
    for route, fmt in (("compute", None), ("compute/vmId", "text"), ("", "text")):
        plain = call(target(route, "2021-02-01", fmt))
        slashed = call(target(route, "2021-02-01", fmt).replace("?", "/?", 1))
        assert slashed == plain
        assert slashed.status == 200


def test_extended_and_unknown_parameters_are_ignored() -> None:
    # cloud-init sends extended=true.
    plain = call("/metadata/instance?api-version=2021-08-01")
    assert call("/metadata/instance?api-version=2021-08-01&extended=true") == plain
    assert call("/metadata/instance?extended=true&api-version=2021-08-01&x=y").body == plain.body


def test_preview_version_serves_the_2017_04_02_schema() -> None:
    assert call(target("", "2017-03-01", None)).body == call(target("", "2017-04-02", None)).body


def test_every_value_is_a_string() -> None:
    # 3.1: in instance JSON every primitive is a string, whatever the file held.
    def leaves(node: Any) -> list[Any]:
        if isinstance(node, dict):
            return [x for v in node.values() for x in leaves(v)]
        if isinstance(node, list):
            return [x for v in node for x in leaves(v)]
        return [node]

    for version in GENERAL_VERSIONS:
        found = leaves(json.loads(call(target("", version, None)).body))
        assert found
        assert all(isinstance(value, str) for value in found)


def test_license_type_appears_from_2020_09_01_when_set() -> None:
    data = reference_vm_data()
    data["instance"]["compute"]["licenseType"] = "Windows_Server"
    vm = vm_from(data)
    before = json.loads(call(target("compute", "2020-07-15", None), vm=vm).body)
    after = json.loads(call(target("compute", "2020-09-01", None), vm=vm).body)
    assert "licenseType" not in before
    assert after["licenseType"] == "Windows_Server"


def test_encryption_keys_appear_from_2021_11_01() -> None:
    # 3.4: before 2021-11-01 only encryptionSettings.enabled is served.
    route = "compute/storageProfile/osDisk/encryptionSettings"
    old = json.loads(call(target(route, "2021-10-01", None)).body)
    new = json.loads(call(target(route, "2021-11-01", None)).body)
    assert old == {"enabled": "false"}
    assert set(new) == {"enabled", "diskEncryptionKey", "keyEncryptionKey"}
    assert new["diskEncryptionKey"] == {"secretUrl": "", "sourceVault": {"id": ""}}


def test_gated_document_is_memoised_per_schema() -> None:
    vm = reference_vm()
    assert vm.document("2021-02-01") is vm.document("2021-02-01")
    assert vm.document("2017-03-01") is vm.document("2017-04-02")


def test_compact_json_keeps_non_ascii() -> None:
    data = reference_vm_data()
    data["instance"]["compute"]["tagsList"] = [{"name": "owner", "value": "Zoë"}]
    data["instance"]["compute"]["tags"] = ""
    vm = vm_from(data)
    body = call(target("compute/tagsList", "2021-02-01", None), vm=vm).body
    assert body == '[{"name":"owner","value":"Zoë"}]'.encode()
    assert call(target("compute/tags", "2021-02-01", "text"), vm=vm).body == "owner:Zoë".encode()

"""The VM file's model: Azure's empty defaults, YAML scalars as Azure strings, MAC
addresses, tags and tagsList."""

from __future__ import annotations

import pytest

from tests.support.config import FIVE_LINE_VM, WriteFile, error_of, load


def test_five_line_vm_gets_azures_empty_defaults(write: WriteFile) -> None:
    assert len(FIVE_LINE_VM.splitlines()) == 5
    compute = load(write(FIVE_LINE_VM)).vms[0].instance.compute
    assert (compute.name, compute.location) == ("tiny", "westus")
    assert compute.vmId == ""
    assert compute.osProfile.adminUsername == ""
    assert compute.storageProfile.osDisk.managedDisk.id == ""
    assert compute.tagsList == []
    vm = load(write(FIVE_LINE_VM)).vms[0]
    dumped = vm.instance.model_dump()
    assert dumped["compute"]["securityProfile"] == {
        "secureBootEnabled": "",
        "virtualTpmEnabled": "",
        "encryptionAtHost": "",
        "securityType": "",
    }
    assert dumped["network"] == {"interface": []}


def test_yaml_scalars_become_azure_strings(write: WriteFile) -> None:
    path = write(
        "instance:\n"
        "  compute:\n"
        "    platformFaultDomain: 0\n"
        "    zone: 2\n"
        "    version: 1.5\n"
        "    priority: null\n"
        "    additionalCapabilities: {hibernationEnabled: false}\n"
        "    osProfile: {disablePasswordAuthentication: true}\n"
        "    storageProfile: {osDisk: {diskSizeGB: 30}}\n"
        "  network:\n"
        "    interface: [{ipv4: {subnet: [{address: 10.0.0.0, prefix: 24}]}}]\n"
    )
    compute = load(path).vms[0].instance.compute
    assert compute.platformFaultDomain == "0"
    assert compute.zone == "2"
    assert compute.version == "1.5"
    assert compute.priority == ""
    assert compute.additionalCapabilities.hibernationEnabled == "false"
    assert compute.osProfile.disablePasswordAuthentication == "true"
    assert compute.storageProfile.osDisk.diskSizeGB == "30"
    subnet = load(path).vms[0].instance.network.interface[0].ipv4.subnet[0]
    assert subnet.prefix == "24"


@pytest.mark.parametrize(
    "mac", ["000D3AF806EC", "000d3af806ec", "00:0D:3A:F8:06:EC", "00-0d-3a-f8-06-ec"]
)
def test_mac_addresses_are_normalised(write: WriteFile, mac: str) -> None:
    path = write(f'instance:\n  network:\n    interface:\n      - macAddress: "{mac}"\n')
    assert load(path).vms[0].instance.network.interface[0].macAddress == "000D3AF806EC"


def test_bad_mac_address(write: WriteFile) -> None:
    path = write('instance:\n  network:\n    interface:\n      - macAddress: "00:0D:3A"\n')
    assert error_of(path) == (
        f"{path}: instance.network.interface[0].macAddress: not a MAC address: '00:0D:3A' "
        "(12 hex digits, e.g. 000D3AF806EC)"
    )


def test_tags_give_tags_list(write: WriteFile) -> None:
    compute = (
        load(write('instance:\n  compute:\n    tags: "a:1;b:x:y;c:"\n')).vms[0].instance.compute
    )
    assert [(t.name, t.value) for t in compute.tagsList] == [("a", "1"), ("b", "x:y"), ("c", "")]


def test_tags_list_gives_tags(write: WriteFile) -> None:
    path = write(
        "instance:\n  compute:\n    tagsList: [{name: a, value: 1}, {name: b, value: x}]\n"
    )
    compute = load(path).vms[0].instance.compute
    assert compute.tags == "a:1;b:x"
    assert compute.tagsList[0].value == "1"


def test_both_tags_forms_are_kept_as_given(write: WriteFile) -> None:
    path = write("instance:\n  compute:\n    tags: a:1\n    tagsList: [{name: a, value: '1'}]\n")
    compute = load(path).vms[0].instance.compute
    assert (compute.tags, len(compute.tagsList)) == ("a:1", 1)


def test_parts_left_out_are_one_shared_empty_model(write: WriteFile) -> None:
    # Frozen models: VMs share the empty parts instead of each validating its own.
    path = write(
        "vms:\n"
        "  - {name: a, addresses: [10.0.0.1]}\n"
        "  - {name: b, addresses: [10.0.0.2]}\n"
        "  - name: c\n"
        "    addresses: [10.0.0.3]\n"
        "    instance: {compute: {plan: {name: p}}}\n"
    )
    a, b, c = (vm.instance.compute for vm in load(path).vms)
    assert a.plan is b.plan and a.osProfile is b.osProfile and a.host is b.host
    assert a.storageProfile is b.storageProfile  # no image given: nothing to copy
    assert c.plan is not a.plan and c.plan.name == "p" and a.plan.name == ""
    assert c.osProfile is a.osProfile
    with pytest.raises(ValueError, match="frozen"):
        a.plan.name = "changed"  # type: ignore[misc]


NAME_RULE = "a VM name holds 1 to 64 letters, digits, hyphens, underscores and periods"


@pytest.mark.parametrize(
    "name", ["a/b", "a b", "a?b", "a%2Fb", "_web", "web.", "web-", "x" * 65, "caf\u00e9", "#1"]
)
def test_a_name_routes_could_not_carry_is_refused(write: WriteFile, name: str) -> None:
    for text in (
        f"name: {name!r}\naddresses: [127.0.1.4]\n",
        f"instance: {{compute: {{name: {name!r}}}}}\naddresses: [127.0.1.4]\n",
    ):
        error = error_of(write(text.replace("'", '"')))
        assert NAME_RULE in error
        assert "not start with an underscore" in error and "end with a period or a hyphen" in error


@pytest.mark.parametrize("name", ["web-1", "a", "Web_01.prod", "x" * 64, "node-0100", "vm_"])
def test_names_azure_allows_are_taken(write: WriteFile, name: str) -> None:
    assert load(write(f"name: {name}\naddresses: [127.0.1.4]\n")).vms[0].display_name == name

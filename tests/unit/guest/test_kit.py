"""The launch kit (guest/kit.py): the QEMU text read back by bash, the libvirt domain
parsed as XML, the values that make the guest this VM, and refusals naming the field."""

from __future__ import annotations

import subprocess
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from openimds.guest import kit

VM_ID = "02aab8a4-74ef-476e-8182-f6d2ba4166a6"
VIEW: dict[str, Any] = {
    "name": "lab-1",
    "addresses": ["192.0.2.10"],
    "instance": {
        "compute": {"vmId": VM_ID},
        "network": {
            "interface": [
                {
                    "macAddress": "000D3AF806EC",
                    "ipv4": {
                        "ipAddress": [{"privateIpAddress": "10.0.0.4"}],
                        "subnet": [{"address": "192.0.2.0", "prefix": "24"}],
                    },
                }
            ]
        },
    },
}


def arrays(text: str) -> dict[str, list[str]]:
    """The arrays the text defines, as bash itself reads them."""
    script = (
        text + 'printf "%s\\0" "${qemu_args[@]}"; printf "\\1"; printf "%s\\0" "${dnsmasq_args[@]}"'
    )
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout
    qemu, dnsmasq = out.decode().split("\1")
    return {"qemu": qemu.split("\0")[:-1], "dnsmasq": dnsmasq.split("\0")[:-1]}


def pairs(args: list[str]) -> list[tuple[str, str]]:
    return list(zip(args[::2], args[1::2], strict=True))


def test_bios_guest_reads_back_vmid_from_a_byte_swapped_smbios_uuid() -> None:
    g = kit.guest(VIEW, uefi=False)
    # What cloud-init does on a generation 1 guest (identity.byte_swap_system_uuid).
    assert str(uuid.UUID(bytes=uuid.UUID(g.smbios_uuid).bytes_le)) == VM_ID
    assert g.smbios_uuid != VM_ID
    assert kit.guest(VIEW, uefi=True).smbios_uuid == VM_ID


def test_qemu_options_as_bash_reads_them() -> None:
    got = arrays(kit.qemu(kit.guest(VIEW, uefi=False), "/srv/media dir/lab,1.iso", "tap7"))
    options = pairs(got["qemu"])
    assert ("-cpu", "max,hypervisor=off") in options
    smbios = [value for option, value in options if option == "-smbios"]
    swapped = kit.guest(VIEW, uefi=False).smbios_uuid
    assert smbios == [
        "type=1,manufacturer=Microsoft Corporation,product=Virtual Machine,"
        f"version=Hyper-V UEFI Release v4.1,uuid={swapped}",
        "type=2,manufacturer=Microsoft Corporation,product=Virtual Machine",
        "type=3,manufacturer=Microsoft Corporation,asset=7783-7084-3265-9085-8269-3286-77",
    ]
    nic = dict(options)["-nic"]
    assert nic.startswith("tap,ifname=tap7,") and nic.endswith(",mac=00:0d:3a:f8:06:ec")
    assert dict(options)["-drive"] == "file=/srv/media dir/lab,,1.iso,media=cdrom,readonly=on"
    assert got["dnsmasq"] == [
        "--dhcp-host=00:0d:3a:f8:06:ec,192.0.2.10,lab-1",  # the address openimds knows it by
        "--dhcp-option-force=245,168.63.129.16",
        "--dhcp-option=121,169.254.169.254/32,192.0.2.1,168.63.129.16/32,192.0.2.1,"
        "0.0.0.0/0,192.0.2.1",
        "--dhcp-option=249,169.254.169.254/32,192.0.2.1,168.63.129.16/32,192.0.2.1,"
        "0.0.0.0/0,192.0.2.1",
    ]


def test_libvirt_domain_is_well_formed_with_the_vms_values() -> None:
    text = kit.libvirt(kit.guest(VIEW, uefi=True), "/srv/lab-1.iso", "br-farm")
    domain = ET.fromstring(text)
    assert domain.findtext("uuid") == VM_ID
    system = {e.get("name"): e.text for e in domain.findall("./sysinfo/system/entry")}
    assert system == {
        "manufacturer": "Microsoft Corporation",
        "product": "Virtual Machine",
        "version": "Hyper-V UEFI Release v4.1",
        "uuid": VM_ID,
    }
    chassis = {e.get("name"): e.text for e in domain.findall("./sysinfo/chassis/entry")}
    assert chassis["asset"] == "7783-7084-3265-9085-8269-3286-77"
    assert domain.find("./os/smbios").get("mode") == "sysinfo"  # type: ignore[union-attr]
    assert domain.find("./os").get("firmware") == "efi"  # type: ignore[union-attr]
    feature = domain.find("./cpu/feature")
    assert feature is not None and feature.attrib == {"policy": "disable", "name": "hypervisor"}
    nic = domain.find("./devices/interface")
    assert nic is not None
    assert nic.find("mac").get("address") == "00:0d:3a:f8:06:ec"  # type: ignore[union-attr]
    assert nic.find("source").get("bridge") == "br-farm"  # type: ignore[union-attr]
    cdrom = domain.find("./devices/disk[@device='cdrom']")
    assert cdrom is not None and cdrom.find("source").get("file") == "/srv/lab-1.iso"  # type: ignore[union-attr]
    assert "dhcp-option-force=245,168.63.129.16" in text  # in the comment, as dnsmasq.conf


def test_without_addresses_the_private_ip_and_without_subnet_a_placeholder() -> None:
    view = {**VIEW, "addresses": []}
    interface = {**VIEW["instance"]["network"]["interface"][0]}
    interface["ipv4"] = {"ipAddress": [{"privateIpAddress": "10.0.0.4"}]}
    view["instance"] = {**VIEW["instance"], "network": {"interface": [interface]}}
    options = kit.dnsmasq_options(kit.guest(view, uefi=False))
    assert options[0] == "--dhcp-host=00:0d:3a:f8:06:ec,10.0.0.4,lab-1"
    assert options[2].endswith("0.0.0.0/0,GATEWAY")


@pytest.mark.parametrize(
    ("instance", "named"),
    [
        ({"compute": {}, "network": VIEW["instance"]["network"]}, "compute.vmId is empty"),
        ({"compute": {"vmId": VM_ID}}, "network.interface[0].macAddress is empty"),
    ],
)
def test_refusals_name_the_field(instance: dict[str, Any], named: str) -> None:
    with pytest.raises(kit.NoKit) as caught:
        kit.guest({"name": "lab-1", "instance": instance}, uefi=False)
    assert named in str(caught.value) and "VM lab-1" in str(caught.value)

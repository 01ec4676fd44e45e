"""The launch kit: what a hypervisor and the farm's DHCP server must set so that a guest
looks like one Azure VM (docs/guests.md, "Provisioning media and the launch kit").

- cloud-init picks the Azure data source by the SMBIOS chassis asset tag.
- systemd-detect-virt must say `microsoft`, or walinuxagent.service
  (ConditionVirtualization=microsoft) does not start: Hyper-V's SMBIOS strings (systemd
  knows Hyper-V by the system version, "Hyper-V ..."; the vendor alone is not in its
  table), and no CPUID hypervisor bit (which would say `qemu` or `kvm` first).
- The system UUID is the one the guest reads back as compute.vmId. cloud-init byte-swaps
  the first three fields on a BIOS (Hyper-V generation 1) guest, as Azure's SMBIOS 2.3
  tables need; on a UEFI (generation 2) guest it takes it as is.
- The NIC carries the MAC of the VM's first interface: cloud-init renders the network
  from IMDS by MAC and refuses IMDS network data that names no MAC of the guest.
- DHCP: option 245 names the WireServer (dnsmasq sends an option the client did not ask
  for only with --dhcp-option-force), options 121 and 249 (Microsoft's) route IMDS and
  the WireServer through the gateway, which marks the primary NIC.
"""

from __future__ import annotations

import ipaddress
import shlex
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
MANUFACTURER = "Microsoft Corporation"
PRODUCT = "Virtual Machine"
HYPERV_VERSION = "Hyper-V UEFI Release v4.1"  # the system version Hyper-V reports
WIRESERVER = "168.63.129.16"
IMDS = "169.254.169.254"


class NoKit(ValueError):
    """The VM lacks what the kit needs; the message names the field."""


@dataclass(frozen=True)
class Guest:
    name: str
    vm_id: str
    mac: str  # aa:bb:cc:dd:ee:ff
    address: str  # "" when the VM has none
    gateway: str  # "" when the VM's subnet is not given
    uefi: bool

    @property
    def smbios_uuid(self) -> str:
        """What the hypervisor sets, so that the guest reads back vmId."""
        vm_id = uuid.UUID(self.vm_id)
        return str(vm_id if self.uefi else uuid.UUID(bytes=vm_id.bytes_le))


def guest(view: Mapping[str, Any], uefi: bool) -> Guest:
    """The guest of a VM as the admin API shows it (`GET /vms/{name}`)."""
    instance = view.get("instance") or {}
    compute = instance.get("compute") or {}
    name = str(view.get("name") or "")
    vm_id = str(compute.get("vmId") or "")
    if not vm_id:
        raise NoKit(f"VM {name}: compute.vmId is empty: the guest's system UUID is its vmId")
    interfaces = (instance.get("network") or {}).get("interface") or []
    mac = str(interfaces[0].get("macAddress") or "") if interfaces else ""
    if not mac:
        raise NoKit(
            f"VM {name}: network.interface[0].macAddress is empty: the guest's NIC needs "
            "the MAC IMDS gives (cloud-init matches the two)"
        )
    ipv4 = interfaces[0].get("ipv4") or {}
    addresses = [str(a) for a in view.get("addresses") or []]
    private = [str(a.get("privateIpAddress") or "") for a in ipv4.get("ipAddress") or []]
    address = next((a for a in [*addresses, *private] if _is_v4(a)), "")
    return Guest(
        name=name,
        vm_id=vm_id,
        mac=":".join(mac[i : i + 2] for i in range(0, 12, 2)).lower(),
        address=address,
        gateway=_gateway(ipv4.get("subnet") or []),
        uefi=uefi,
    )


def _is_v4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def _gateway(subnets: list[Mapping[str, Any]]) -> str:
    """Azure's gateway: the first host address of the subnet."""
    if not subnets:
        return ""
    try:
        network = ipaddress.ip_network(
            f"{subnets[0].get('address')}/{subnets[0].get('prefix')}", strict=False
        )
    except ValueError:
        return ""
    return str(network.network_address + 1) if network.version == 4 else ""


def dnsmasq_options(g: Guest) -> list[str]:
    router = g.gateway or "GATEWAY"
    options = []
    if g.address:
        options.append(f"--dhcp-host={g.mac},{g.address},{g.name}")
    options += [
        f"--dhcp-option-force=245,{WIRESERVER}",
    ]
    # A client given option 121 ignores option 3: the default route goes in it too.
    routes = f"{IMDS}/32,{router},{WIRESERVER}/32,{router},0.0.0.0/0,{router}"
    # 249 is Microsoft's copy of 121, the one waagent reads (dhcp.parse_dhcp_resp).
    options += [f"--dhcp-option=121,{routes}", f"--dhcp-option=249,{routes}"]
    return options


def qemu_options(g: Guest, media: str, tap: str) -> list[tuple[str, str]]:
    """(option, value) pairs for qemu-system-x86_64."""
    return [
        ("-cpu", "max,hypervisor=off"),
        (
            "-smbios",
            f"type=1,manufacturer={MANUFACTURER},product={PRODUCT},"
            f"version={HYPERV_VERSION},uuid={g.smbios_uuid}",
        ),
        ("-smbios", f"type=2,manufacturer={MANUFACTURER},product={PRODUCT}"),
        ("-smbios", f"type=3,manufacturer={MANUFACTURER},asset={ASSET_TAG}"),
        ("-nic", f"tap,ifname={tap},script=no,downscript=no,model=virtio-net-pci,mac={g.mac}"),
        # QEMU reads a comma in a value as ",,".
        ("-drive", f"file={media.replace(',', ',,')},media=cdrom,readonly=on"),
    ]


def qemu(g: Guest, media: str, tap: str) -> str:
    """Bash text defining the arrays `qemu_args` and `dnsmasq_args`."""
    firmware = "UEFI (generation 2)" if g.uefi else "BIOS (generation 1)"
    pairs = [f"{option} {shlex.quote(value)}" for option, value in qemu_options(g, media, tap)]
    return "\n".join(
        [
            f"# Azure VM {g.name} (vmId {g.vm_id}), {firmware} guest.",
            "# QEMU: add the disk, memory and accelerator; the tap is on the farm's bridge.",
            _array("qemu_args", pairs),
            "# dnsmasq, serving that bridge.",
            _array("dnsmasq_args", [shlex.quote(o) for o in dnsmasq_options(g)]),
            "",
        ]
    )


def _array(name: str, lines: list[str]) -> str:
    return f"{name}=(\n" + "\n".join("  " + line for line in lines) + "\n)"


def libvirt(g: Guest, media: str, bridge: str) -> str:
    """The parts of a libvirt domain that make the guest this VM, as one well-formed
    <domain> to merge into the farm's own (disk, memory, emulator)."""

    def entry(name: str, value: str) -> str:
        return f"      <entry name={quoteattr(name)}>{escape(value)}</entry>"

    firmware = ' firmware="efi"' if g.uefi else ""
    lines = [
        # A comment may not hold "--": dnsmasq's options in its configuration file's form.
        f"<!-- Azure VM {escape(g.name)} (vmId {g.vm_id}); dnsmasq.conf lines:",
        *[f"     {escape(option.removeprefix('--'))}" for option in dnsmasq_options(g)],
        "-->",
        '<domain type="qemu">',
        f"  <name>{escape(g.name)}</name>",
        f"  <uuid>{g.smbios_uuid}</uuid>",
        '  <sysinfo type="smbios">',
        "    <system>",
        entry("manufacturer", MANUFACTURER),
        entry("product", PRODUCT),
        entry("version", HYPERV_VERSION),
        entry("uuid", g.smbios_uuid),
        "    </system>",
        "    <baseBoard>",
        entry("manufacturer", MANUFACTURER),
        entry("product", PRODUCT),
        "    </baseBoard>",
        "    <chassis>",
        entry("manufacturer", MANUFACTURER),
        entry("asset", ASSET_TAG),
        "    </chassis>",
        "  </sysinfo>",
        f"  <os{firmware}>",
        '    <type arch="x86_64">hvm</type>',
        '    <smbios mode="sysinfo"/>',
        "  </os>",
        '  <cpu mode="maximum" check="none">',
        '    <feature policy="disable" name="hypervisor"/>',
        "  </cpu>",
        "  <devices>",
        '    <interface type="bridge">',
        f"      <source bridge={quoteattr(bridge)}/>",
        f'      <mac address="{g.mac}"/>',
        '      <model type="virtio"/>',
        "    </interface>",
        '    <disk type="file" device="cdrom">',
        '      <driver name="qemu" type="raw"/>',
        f"      <source file={quoteattr(media)}/>",
        '      <target dev="sda" bus="sata"/>',
        "      <readonly/>",
        "    </disk>",
        "  </devices>",
        "</domain>",
        "",
    ]
    return "\n".join(lines)

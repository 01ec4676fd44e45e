"""The launch kit's dnsmasq options, served by a real dnsmasq and read by waagent's own
DHCP code (root): the guest gets the VM's address, the WireServer in option 245 only
because the kit forces it, and the routes in options 121 and 249.

    host ns: br0 198.51.100.1/24, dnsmasq
      `-- guest ns: eth0 with the VM's MAC, no address (as at boot)
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openimds.guest import kit
from tests.clients.sandbox import DEBIAN_PYTHON, PROBES, client_path

pytestmark = [pytest.mark.clients, pytest.mark.root]

VIEW: dict[str, Any] = {
    "name": "lab-1",
    "addresses": ["198.51.100.10"],
    "instance": {
        "compute": {"vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6"},
        "network": {
            "interface": [
                {
                    "macAddress": "000D3AF806EC",
                    "ipv4": {"subnet": [{"address": "198.51.100.0", "prefix": "24"}]},
                }
            ]
        },
    },
}


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@dataclass
class Farm:
    host: str
    guest: str
    tmp: Path


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    if os.geteuid() != 0:
        pytest.fail("this test creates network namespaces and must run as root")
    tag = f"{os.getpid()}{secrets.token_hex(2)}"
    net = Farm(f"oikit{tag}h", f"oikit{tag}g", tmp_path)
    created: list[str] = []
    try:
        for ns in (net.host, net.guest):
            _ip("netns", "add", ns)
            created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", net.host, "link", "add", "br0", "type", "bridge")
        _ip("-n", net.host, "addr", "add", "198.51.100.1/24", "dev", "br0")
        _ip("-n", net.host, "link", "set", "br0", "up")
        _ip("-n", net.host, "link", "add", "port0", "type", "veth", "peer", "name", "eth0",
            "netns", net.guest)  # fmt: skip
        _ip("-n", net.host, "link", "set", "port0", "master", "br0", "up")
        mac = kit.guest(VIEW, uefi=False).mac
        _ip("-n", net.guest, "link", "set", "eth0", "address", mac, "up")
        # What waagent adds while it asks (set_route_for_dhcp_broadcast).
        _ip("-n", net.guest, "route", "add", "255.255.255.255/32", "dev", "eth0")
        yield net
    finally:
        for ns in reversed(created):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def lease(farm: Farm, options: list[str], asks: str = "") -> dict[str, Any]:
    """Start dnsmasq with `options` on the host's bridge; waagent's DHCP in the guest."""
    dnsmasq = subprocess.Popen(
        ["ip", "netns", "exec", farm.host, "dnsmasq", "--keep-in-foreground", "--port=0",
         "--conf-file=/dev/null", "--interface=br0", "--bind-interfaces",
         f"--dhcp-leasefile={farm.tmp / 'leases'}", f"--pid-file={farm.tmp / 'pid'}",
         "--dhcp-range=198.51.100.100,198.51.100.200,255.255.255.0,1h",
         "--dhcp-option=3,198.51.100.1", *options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        env["PYTHONPATH"] = str(client_path("waagent", "azurelinuxagent"))
        mac = kit.guest(VIEW, uefi=False).mac
        cmd = ["ip", "netns", "exec", farm.guest, DEBIAN_PYTHON, "-B",
               str(PROBES / "dhcp_probe.py"), mac, *([asks] if asks else [])]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return report
    finally:
        dnsmasq.terminate()
        dnsmasq.wait(timeout=10)
        assert dnsmasq.stdout is not None
        dnsmasq.stdout.close()


def _routes(encoded_hex: str) -> list[tuple[str, str]]:
    """RFC 3442 classless routes: (destination/prefix, router)."""
    data, out = bytes.fromhex(encoded_hex), []
    i = 0
    while i < len(data):
        width = data[i]
        size = (width + 7) // 8
        network = data[i + 1 : i + 1 + size] + bytes(4 - size)
        router = data[i + 1 + size : i + 5 + size]
        out.append(
            (f"{ipaddress.IPv4Address(network)}/{width}", str(ipaddress.IPv4Address(router)))
        )
        i += 5 + size
    return out


def test_the_kits_options_give_waagent_the_wireserver_and_routes(farm: Farm) -> None:
    report = lease(farm, kit.dnsmasq_options(kit.guest(VIEW, uefi=False)))
    assert report["yiaddr"] == "198.51.100.10"  # the address openimds knows the VM by
    assert report["endpoint"] == "168.63.129.16"
    assert report["gateway"] == "198.51.100.1"
    expected = [
        ("169.254.169.254/32", "198.51.100.1"),
        ("168.63.129.16/32", "198.51.100.1"),
        ("0.0.0.0/0", "198.51.100.1"),
    ]
    assert _routes(report["options"]["121"]) == expected
    assert _routes(report["options"]["249"]) == expected
    assert len(report["routes"]) == 3  # waagent's own reading of 249


# What dhclient asks for (cloud-init's ephemeral DHCP, then the guest's own client):
# not 245, which cloud-init still reads from the lease as `unknown-245`.
DHCLIENT_ASKS = "1,28,2,3,15,6,119,12,44,47,26,121,42"


def test_245_reaches_a_client_that_does_not_ask_for_it_only_when_forced(farm: Farm) -> None:
    forced = kit.dnsmasq_options(kit.guest(VIEW, uefi=False))
    assert "245" in lease(farm, forced, DHCLIENT_ASKS)["options"]
    unforced = [option.replace("--dhcp-option-force=", "--dhcp-option=") for option in forced]
    report = lease(farm, unforced, DHCLIENT_ASKS)
    assert "245" not in report["options"]
    assert "121" in report["options"]  # asked for, so sent either way

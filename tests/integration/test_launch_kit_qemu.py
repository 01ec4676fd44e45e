"""The launch kit's QEMU arguments, run by a real QEMU (TCG, root: the NIC's tap lives
in a network namespace the test creates). What the guest's firmware hands the OS is read
back from guest memory: the SMBIOS tables SeaBIOS built (system, board and chassis
strings, the asset tag cloud-init looks for, the UUID), and the CPU's hypervisor bit
off, which together make systemd-detect-virt say `microsoft`."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from openimds.guest import kit, media

pytestmark = [pytest.mark.root, pytest.mark.slow]

VIEW: dict[str, Any] = {
    "name": "lab-1",
    "instance": {
        "compute": {"vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6"},
        "network": {"interface": [{"macAddress": "000D3AF806EC"}]},
    },
}
MEMORY = 64 * 1024 * 1024


@pytest.fixture
def namespace() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("this test creates a network namespace and a tap, and must run as root")
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("qemu-system-x86_64 is missing: run scripts/install --system")
    ns = f"oikitq{os.getpid()}{secrets.token_hex(2)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for cmd in (["tuntap", "add", "tap0", "mode", "tap"], ["link", "set", "tap0", "up"]):
            subprocess.run(["ip", "-n", ns, *cmd], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def qmp(stdin: IO[str], stdout: IO[str], command: str, **arguments: Any) -> Any:
    message = {"execute": command, **({"arguments": arguments} if arguments else {})}
    stdin.write(json.dumps(message) + "\n")
    stdin.flush()
    while True:
        reply = json.loads(stdout.readline())
        if "return" in reply or "error" in reply:
            return reply.get("return", reply.get("error"))


def smbios(memory: bytes) -> dict[int, tuple[bytes, list[str]]]:
    """The SMBIOS structures by type: (formatted area, strings), from the 2.x entry
    point (`_SM_`: table length at 0x16, address at 0x18)."""
    entry = memory.find(b"_SM_")
    if entry < 0:
        return {}
    length, address = struct.unpack_from("<HI", memory, entry + 0x16)
    table, i = memory[address : address + length], 0
    found: dict[int, tuple[bytes, list[str]]] = {}
    while i < len(table):
        kind, size = table[i], table[i + 1]
        end = table.index(b"\0\0", i + size)
        strings = [s.decode() for s in table[i + size : end].split(b"\0") if s]
        found.setdefault(kind, (table[i : i + size], strings))
        i = end + 2
    return found


def boot_firmware(ns: str, args: list[str], dump: Path) -> tuple[dict[int, Any], Any]:
    """Start QEMU with the kit's arguments until SeaBIOS has built its tables; read them
    from a dump of guest memory, and the CPU's hypervisor property."""
    cmd = ["ip", "netns", "exec", ns, "qemu-system-x86_64", "-accel", "tcg", "-m", "64",
           "-display", "none", "-nodefaults", "-qmp", "stdio", *args]  # fmt: skip
    qemu = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert qemu.stdin is not None and qemu.stdout is not None
    try:
        greeting = json.loads(qemu.stdout.readline())
        assert "QMP" in greeting, greeting
        qmp(qemu.stdin, qemu.stdout, "qmp_capabilities")
        tables: dict[int, Any] = {}
        deadline = time.monotonic() + 30
        while 3 not in tables and time.monotonic() < deadline:
            time.sleep(0.5)
            qmp(qemu.stdin, qemu.stdout, "pmemsave", val=0, size=MEMORY, filename=str(dump))
            tables = smbios(dump.read_bytes())
        path = "/machine/unattached/device[0]"
        hypervisor = qmp(qemu.stdin, qemu.stdout, "qom-get", path=path, property="hypervisor")
        qmp(qemu.stdin, qemu.stdout, "quit")
        return tables, hypervisor
    finally:
        if qemu.poll() is None:
            qemu.kill()
        qemu.wait(timeout=30)
        qemu.stdin.close()
        qemu.stdout.close()


def test_qemu_takes_the_kit_and_the_guest_sees_hyper_v_and_the_vm(
    namespace: str, tmp_path: Path
) -> None:
    iso = tmp_path / "lab-1.iso"
    media.write(str(iso), media.iso(b"<Environment/>\n", "rd_rdfe_stable.261208-0000"))
    guest = kit.guest(VIEW, uefi=False)
    args = [part for pair in kit.qemu_options(guest, str(iso), "tap0") for part in pair]
    tables, hypervisor = boot_firmware(namespace, args, tmp_path / "memory")

    assert hypervisor is False  # no CPUID hypervisor bit: systemd goes on to DMI
    system, strings = tables[1]
    assert strings[system[4] - 1] == "Microsoft Corporation"  # sys_vendor
    assert strings[system[5] - 1] == "Virtual Machine"  # product_name
    # SMBIOS 2.6+ stores the first three fields little-endian; Linux's product_uuid reads
    # them so, and cloud-init on a BIOS guest swaps them back: vmId.
    product_uuid = uuid.UUID(bytes_le=bytes(system[8:24]))
    assert str(uuid.UUID(bytes=product_uuid.bytes_le)) == VIEW["instance"]["compute"]["vmId"]
    board, strings = tables[2]
    assert strings[board[4] - 1] == "Microsoft Corporation"  # board_vendor
    chassis, strings = tables[3]
    assert strings[chassis[4] - 1] == "Microsoft Corporation"
    assert strings[chassis[8] - 1] == "7783-7084-3265-9085-8269-3286-77"  # chassis_asset_tag

"""Boot the Debian guest image (tests/support/guest_image.py) as an Azure VM would boot,
against openimds, inside a network namespace the test creates.

The namespace holds a bridge with the guest's gateway (192.0.2.1/24) and the two Azure
host addresses, 169.254.169.254 (IMDS) and 168.63.129.16 (WireServer, HostGAPlugin);
dnsmasq answering DHCP with option 245 (the WireServer address, which dnsmasq sends only
when forced) and option 121 routes; openimds, run inside the namespace; and QEMU on a tap
of that bridge. QEMU runs under TCG (nested KVM hangs on the machines this runs on), with
`-cpu max,hypervisor=off` and Hyper-V's SMBIOS strings so that `systemd-detect-virt` says
`microsoft` (waagent's unit requires it) and cloud-init picks the Azure datasource by the
chassis asset tag. Each VM boots from its own copy-on-write overlay of the cached image, so
a second boot of the same VM finds what the first left.

Everything started here stops, and the namespace goes, when the `GuestNetwork` context
ends, whatever happened inside it.
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from openimds.guest.kit import HYPERV_VERSION
from tests.support.guest_image import GuestImage

GATEWAY = "192.0.2.1"
PREFIX = 24
IMDS_ADDRESS = "169.254.169.254"
WIRESERVER_ADDRESS = "168.63.129.16"
# The chassis asset tag of every Azure VM: what cloud-init's ds-identify looks for.
AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
BRIDGE = "br0"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def azure_mac() -> str:
    """A MAC address in Azure's own range (00:0d:3a)."""
    return "00:0d:3a:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))


@dataclass
class GuestNetwork:
    """A network namespace with a bridge, the Azure host addresses and DHCP."""

    workdir: Path
    name: str = field(default_factory=lambda: f"oiguest-{secrets.token_hex(4)}")
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _taps: int = 0

    def __enter__(self) -> GuestNetwork:
        self._stack.__enter__()
        try:
            _ip("netns", "add", self.name)
            self._stack.callback(subprocess.run, ["ip", "netns", "del", self.name], check=False)
            _ip("-n", self.name, "link", "set", "lo", "up")
            _ip("-n", self.name, "link", "add", BRIDGE, "type", "bridge")
            for address in (
                f"{GATEWAY}/{PREFIX}",
                f"{IMDS_ADDRESS}/32",
                f"{WIRESERVER_ADDRESS}/32",
            ):
                _ip("-n", self.name, "address", "add", address, "dev", BRIDGE)
            _ip("-n", self.name, "link", "set", BRIDGE, "up")
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def start(self, cmd: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        """A process inside the namespace, output to `log`, stopped when the network goes."""
        with log.open("ab") as sink:
            proc = subprocess.Popen(
                [*self.exec_prefix(), *cmd], stdout=sink, stderr=subprocess.STDOUT
            )
        self._stack.callback(_stop, proc)
        return proc

    def add_tap(self) -> str:
        tap = f"tap{self._taps}"
        self._taps += 1
        _ip("-n", self.name, "tuntap", "add", "dev", tap, "mode", "tap")
        _ip("-n", self.name, "link", "set", tap, "master", BRIDGE)
        _ip("-n", self.name, "link", "set", tap, "up")
        return tap

    def start_dhcp(self, hosts: dict[str, str]) -> subprocess.Popen[bytes]:
        """dnsmasq, DHCP only (no DNS), each MAC of `hosts` getting its address."""
        leases = self.workdir / "dnsmasq.leases"
        route = f"{GATEWAY}"
        cmd = [
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--port=0",
            f"--interface={BRIDGE}",
            "--bind-dynamic",
            "--except-interface=lo",
            f"--dhcp-range={GATEWAY.rsplit('.', 1)[0]}.100,{GATEWAY.rsplit('.', 1)[0]}.200,"
            "255.255.255.0,1h",
            f"--dhcp-leasefile={leases}",
            f"--pid-file={self.workdir / 'dnsmasq.pid'}",
            "--dhcp-authoritative",
            "--user=root",
            "--log-dhcp",
            "--log-facility=-",
            f"--dhcp-option=option:router,{GATEWAY}",
            # Option 121 makes clients ignore option 3: the default route is listed too.
            f"--dhcp-option=121,{IMDS_ADDRESS}/32,{route},{WIRESERVER_ADDRESS}/32,{route},"
            f"0.0.0.0/0,{route}",
            # The WireServer address, as Azure's DHCP gives it (dnsmasq sends an option
            # no client asked for only when forced).
            f"--dhcp-option-force=245,{WIRESERVER_ADDRESS}",
            *(f"--dhcp-host={mac},{address}" for mac, address in hosts.items()),
        ]
        return self.start(cmd, self.workdir / "dnsmasq.log")

    def run(
        self,
        cmd: Sequence[str],
        *,
        timeout: float = 60,
        check: bool = False,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.exec_prefix(), *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            input=stdin,
        )

    def port_open(self, address: str, port: int) -> bool:
        probe = f"exec 3<>/dev/tcp/{address}/{port} && head -c 4 <&3"
        try:
            done = self.run(["timeout", "3", "bash", "-c", probe], timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0 and done.stdout.startswith("SSH")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class GuestVM:
    """One VM: its identity (vmId, MAC, address), its disk overlay and its boots."""

    network: GuestNetwork
    image: GuestImage
    vm_id: str
    mac: str
    address: str
    key: Path
    user: str = "azureuser"
    memory_mb: int = 1024
    cpus: int = 2
    boots: int = 0
    process: subprocess.Popen[bytes] | None = None
    console: Path | None = None
    started: float = 0.0
    powered_on_at: float = 0.0  # wall clock, to compare with times openimds records

    @property
    def overlay(self) -> Path:
        return self.network.workdir / f"vm-{self.vm_id}.qcow2"

    def create_disk(self) -> None:
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-b",
                str(self.image.disk),
                "-F",
                "raw",
                str(self.overlay),
            ],
            check=True,
        )

    def boot(self) -> None:
        """Power on (the overlay is made on the first boot); returns at once."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the VM is running")
        if not self.overlay.exists():
            self.create_disk()
        self.boots += 1
        self.console = self.network.workdir / f"console-{self.boots}.log"
        tap = self.network.add_tap()
        cmd = [
            "nice",
            "-n",
            "10",
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-cpu",
            "max,hypervisor=off",
            "-smp",
            str(self.cpus),
            "-m",
            str(self.memory_mb),
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-kernel",
            str(self.image.kernel),
            "-initrd",
            str(self.image.initrd),
            "-append",
            "root=/dev/vda rw console=ttyS0 net.ifnames=0",
            "-drive",
            f"file={self.overlay},if=virtio,format=qcow2,cache=unsafe",
            "-netdev",
            f"tap,id=nic0,ifname={tap},script=no,downscript=no",
            "-device",
            f"virtio-net-pci,netdev=nic0,mac={self.mac}",
            "-smbios",
            "type=1,manufacturer=Microsoft Corporation,product=Virtual Machine,"
            f"version={HYPERV_VERSION},uuid={self.vm_id}",
            "-smbios",
            f"type=3,manufacturer=Microsoft Corporation,asset={AZURE_ASSET_TAG}",
            "-serial",
            f"file:{self.console}",
            "-device",
            "virtio-rng-pci",
        ]
        self.started = time.monotonic()
        self.powered_on_at = time.time()
        self.process = self.network.start(cmd, self.network.workdir / f"qemu-{self.boots}.log")

    def shutdown(self, timeout: float = 180) -> None:
        """A clean power-off from inside (so the disk is consistent for the next boot)."""
        assert self.process is not None
        self.ssh("sudo systemctl poweroff", check=False, timeout=30)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(self.process)

    def wait_for_sshd(self, timeout: float) -> float:
        """Seconds from power-on until the guest's sshd answers."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            self._check_running()
            if self.network.port_open(self.address, 22):
                return time.monotonic() - self.started
            time.sleep(2)
        raise TimeoutError(
            f"sshd did not answer in {timeout:.0f} s; console:\n{self.console_tail()}"
        )

    def wait_for(self, command: str, timeout: float, user: str | None = None) -> float:
        """Run `command` in the guest until it succeeds; seconds since power-on."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_running()
            done = self.ssh(command, check=False, timeout=60, user=user)
            if done.returncode == 0:
                return time.monotonic() - self.started
            last = done.stdout + done.stderr
            time.sleep(3)
        raise TimeoutError(f"{command!r} did not succeed in {timeout:.0f} s: {last}")

    def ssh(
        self,
        command: str,
        *,
        user: str | None = None,
        check: bool = True,
        timeout: float = 120,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        login = user or self.user
        cmd = [
            "ssh",
            "-i",
            str(self.key),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
            f"{login}@{self.address}",
            command,
        ]
        done = self.network.run(cmd, timeout=timeout, stdin=stdin)
        if check and done.returncode != 0:
            raise AssertionError(
                f"ssh {shlex.quote(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done

    def console_text(self) -> str:
        return self.console.read_text(errors="replace") if self.console else ""

    def console_tail(self, lines: int = 60) -> str:
        return "\n".join(self.console_text().splitlines()[-lines:])

    def _check_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"qemu exited {self.process.returncode}; console:\n{self.console_tail()}"
            )


def ssh_key(directory: Path) -> tuple[Path, str]:
    """A fresh ed25519 key pair: (private key path, public key line)."""
    path = directory / "id_ed25519"
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "openimds-guest-test",
            "-f",
            str(path),
        ],
        check=True,
    )
    return path, path.with_suffix(".pub").read_text().strip()

"""Run Debian's real IMDS clients against the real server, with no way off the machine.

The clients' code comes from the Debian packages that `scripts/install --system` unpacks
into .venv/debian-clients (or, failing that, a system-wide install) and runs under
Debian's own /usr/bin/python3, not in our virtual environment. Server and client run in a
fresh network namespace that holds only a loopback interface: WALinuxAgent 2.7 falls back
to Azure's wireserver on connection errors, and there the packet has no route to leave by.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import RunningServer, start_server

ROOT = Path(__file__).resolve().parents[2]
PROBES = Path(__file__).with_name("probes")
DEBIAN_PYTHON = "/usr/bin/python3"
UNPACKED = ROOT / ".venv" / "debian-clients" / "root" / "usr" / "lib" / "python3" / "dist-packages"
SYSTEM = Path("/usr/lib/python3/dist-packages")
INSTALL_HINT = "run scripts/install --system (scripts/test does) to fetch it"


def client_path(package: str, module: str) -> Path:
    """The dist-packages directory holding `module` of Debian package `package`;
    fails the test, naming the fix, when neither place has it."""
    if not Path(DEBIAN_PYTHON).is_file():
        pytest.fail(f"{DEBIAN_PYTHON} (Debian's python3) is missing: {INSTALL_HINT}")
    for base in (UNPACKED, SYSTEM):
        if (base / module).is_dir():
            return base
    pytest.fail(f"Debian package {package} (Python module {module}) not found: {INSTALL_HINT}")


class LoopbackOnlyNetwork:
    """A network namespace with nothing but `lo`, kept alive by a holder process.

    As root it is a plain network namespace; otherwise a user namespace maps us to root
    inside it, so the tests need no privileges. `prefix` runs a command inside."""

    def __init__(self) -> None:
        rootless = os.geteuid() != 0
        user = ["--user", "--map-root-user"] if rootless else []
        self.holder = subprocess.Popen(
            [
                "unshare",
                "--net",
                *user,
                "--",
                "sh",
                "-c",
                "ip link set lo up && echo up && exec sleep 3600",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.holder.stdout is not None and self.holder.stderr is not None
        ready = self.holder.stdout.readline()
        if ready != b"up\n":
            why = self.holder.stderr.read().decode(errors="replace").strip()
            self.close()
            need = "unprivileged user namespaces" if rootless else "unshare and ip"
            pytest.fail(f"could not create a network namespace (needs {need}): {why}")
        pid = self.holder.pid
        # Guard: never run a client in the host's namespace by mistake.
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        enter_user = ["--user", "--preserve-credentials"] if rootless else []
        self.prefix: tuple[str, ...] = ("nsenter", f"--target={pid}", "--net", *enter_user, "--")

    def close(self) -> None:
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()
        for stream in (self.holder.stdout, self.holder.stderr):
            if stream is not None:
                stream.close()


# Nothing listens in a fresh namespace but the server, whose port is ephemeral (>= 1024).
CLOSED_LOOPBACK = "127.0.0.1:9"


def run_probe(
    net: LoopbackOnlyNetwork, probe: str, dist_packages: Path, args: Sequence[str]
) -> dict[str, Any]:
    """Run probes/<probe> with Debian's python3 inside the namespace; its last stdout
    line is a JSON report. The environment is minimal: no proxy variables reach the
    clients (requests would route 127.0.0.1 through a configured proxy)."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(dist_packages),
    }
    cmd = [*net.prefix, DEBIAN_PYTHON, "-B", str(PROBES / probe), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        pytest.fail(f"{probe} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@dataclass
class ClientRun:
    """What a probe reported, and what the server logged while answering it."""

    report: dict[str, Any]
    access: list[dict[str, Any]]

    def served(self, path: str) -> list[int]:
        """Statuses of the requests the server logged for `path`."""
        return [line["status"] for line in self.access if line["path"] == path]


def serve_and_probe(
    tmp: Path,
    probe: str,
    dist_packages: Path,
    make_args: Callable[[RunningServer], Sequence[str]],
    config: str | None = None,
) -> ClientRun:
    """Start the server and run one probe against it, both inside a fresh loopback-only
    namespace; stop the server (which flushes its access log) and collect both sides."""
    net = LoopbackOnlyNetwork()
    try:
        server = start_server(tmp, config=config, prefix=net.prefix)
        try:
            report = run_probe(net, probe, dist_packages, make_args(server))
        finally:
            server.stop()
    finally:
        net.close()
    access = [
        json.loads(line)
        for line in server.output.splitlines()
        if line.startswith("{") and '"event":"access"' in line
    ]
    return ClientRun(report, access)

"""The guest agents' own WireServer clients against openimds' guest plane, no boot:
cloud-init's `WALinuxAgentShim` (Debian's cloud-init 22.4) reports ready and takes the
SSH key out of the certificates; waagent's `WireProtocol` (Debian's 2.7) detects the
protocol, fetches the goal state, decrypts the certificates with openssl, reports its
health and uploads its status through the HostGAPlugin.

Agents hard-code 168.63.129.16. The test makes a network namespace with only `lo`, puts
168.63.129.16/32 on that `lo` (the address then exists only inside the namespace), and
runs openimds there with the WireServer on :80 and the HostGAPlugin on :32526; the agent
runs in the same namespace (probes/guest_probe.py).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.clients.sandbox import LoopbackOnlyNetwork, client_path, run_probe
from tests.support.server import start_server

pytestmark = pytest.mark.clients

WIRESERVER = "168.63.129.16"
VM_ID = "0f3b1c2d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


@dataclass
class AgentRun:
    report: dict[str, Any]
    access: list[dict[str, Any]]
    guest: dict[str, Any]
    ssh_key: str

    def served(self, method: str, path: str) -> list[int]:
        return [
            line["status"]
            for line in self.access
            if line.get("method") == method and line["path"] == path
        ]

    def served_under(self, method: str, prefix: str) -> list[int]:
        """Statuses of the requests for the role instance's own paths
        (/machine/{container}/{instance}: configuration, certificates, status blob)."""
        return [
            line["status"]
            for line in self.access
            if line.get("method") == method and line["path"].startswith(prefix)
        ]


def _run(tmp: Path, agent: str, package: str, module: str) -> AgentRun:
    dist = client_path(package, module)
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-N", "", "-f", str(tmp / "id")], check=True)
    key = (tmp / "id.pub").read_text().strip()
    config = tmp / "vm.yaml"
    config.write_text(
        "vms:\n  - name: guest-1\n    instance:\n      compute:\n        name: guest-1\n"
        f"        vmId: {VM_ID}\n"
        f'        publicKeys: [{{keyData: "{key}", path: /home/azureuser/.ssh/authorized_keys}}]\n'
    )
    state = tmp / "state.db"
    net = LoopbackOnlyNetwork()
    try:
        subprocess.run(
            [*net.prefix, "ip", "address", "add", f"{WIRESERVER}/32", "dev", "lo"], check=True
        )
        server = start_server(
            tmp,
            config=str(config),
            state_path=str(state),
            prefix=net.prefix,
            args=[
                "--wireserver-listen",
                f"{WIRESERVER}:80",
                "--hostgaplugin-listen",
                f"{WIRESERVER}:32526",
            ],
        )
        try:
            report = run_probe(net, "guest_probe.py", dist, [agent, str(tmp / "agent")])
        finally:
            server.stop()
    finally:
        net.close()
    access = [
        json.loads(line)
        for line in server.output.splitlines()
        if line.startswith("{") and '"event":"access"' in line
    ]
    with sqlite3.connect(state) as db:
        row = db.execute(
            "SELECT value FROM records WHERE kind = 'guest' AND key = 'guest-1'"
        ).fetchone()
    guest = json.loads(row[0]) if row else {}
    return AgentRun(report, access, guest, key)


@pytest.fixture(scope="module")
def cloud_init(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentRun]:
    yield _run(tmp_path_factory.mktemp("guest-cloud-init"), "cloud-init", "cloud-init", "cloudinit")


@pytest.fixture(scope="module")
def waagent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentRun]:
    yield _run(tmp_path_factory.mktemp("guest-waagent"), "waagent", "waagent", "azurelinuxagent")


def test_cloud_init_runs_in_isolation(cloud_init: AgentRun) -> None:
    assert cloud_init.report["version"].startswith("22.")
    assert cloud_init.report["module"].endswith("cloudinit/sources/helpers/azure.py")
    assert cloud_init.report["isolation"]["interfaces"] == ["lo"]


def test_cloud_init_takes_the_ssh_key_out_of_the_certificates(cloud_init: AgentRun) -> None:
    assert cloud_init.report["unmatched"] == []
    assert len(cloud_init.report["fingerprints"]) == 1
    # The key as the certificate holds it: type and data (a certificate has no comment).
    assert [k.split() for k in cloud_init.report["keys"]] == [cloud_init.ssh_key.split()[:2]]
    assert cloud_init.served("GET", "/machine/") == [200] * 4
    # Certificates, for the two calls that gave fingerprints; nothing else per instance.
    everything = cloud_init.served_under("GET", "/machine/")
    assert everything == [200] * 6  # 4 goal states + 2 certificates


def test_cloud_init_reports_ready_and_failure(cloud_init: AgentRun) -> None:
    # Ready, Ready, the failure, Ready: every report answered 200; the last one kept.
    assert cloud_init.served("POST", "/machine") == [200] * 4
    assert cloud_init.guest["health"]["state"] == "Ready"
    assert cloud_init.guest["incarnation"] == 1


def test_waagent_detects_and_fetches_the_goal_state(waagent: AgentRun) -> None:
    report = waagent.report
    assert report["version"].startswith("2.7.")
    assert report["module"].endswith("azurelinuxagent/common/protocol/wire.py")
    assert report["incarnation"] == "1"
    assert report["role_instance_id"] == f"{VM_ID}.guest-1"
    assert report["vm_name"] == "guest-1"
    assert report["status_upload_blob"].startswith(f"http://{WIRESERVER}:80/machine/")
    assert waagent.served("GET", "/") == [200]  # comp=versions
    statuses = waagent.served_under("GET", "/machine/")
    # The goal state, then hosting environment, shared config, extensions config and
    # certificates (and any repeat), every one answered.
    assert len(statuses) >= 5 and set(statuses) == {200}


def test_waagent_decrypts_the_certificates(waagent: AgentRun) -> None:
    thumbprints = waagent.report["thumbprints"]
    assert len(thumbprints) == 1 and len(thumbprints[0]) == 40
    assert waagent.report["crt_files"] == [f"{thumbprints[0]}.crt"]


def test_waagent_reports_health_and_uploads_status_through_the_host_plugin(
    waagent: AgentRun,
) -> None:
    assert waagent.served("POST", "/machine") == [200, 200]  # NotReady, then Ready
    assert waagent.guest["health"]["state"] == "Ready"
    assert waagent.report["host_plugin_available"]
    assert waagent.served("GET", "/versions") == [200]
    assert waagent.served("PUT", "/status") == [200]
    # Not the direct fallback: the HostGAPlugin took it.
    assert waagent.served_under("PUT", "/machine/") == []
    agent = waagent.guest["agent"]
    assert agent["status"] == "Ready" and agent["agent_version"].startswith("2.7.")
    assert agent["message"] == "Guest Agent is running"

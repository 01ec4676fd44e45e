"""A real Azure-style guest boots against openimds: Debian 12 with its own cloud-init
(Azure datasource) and waagent, under QEMU, in a network namespace the test creates
(tests/support/guest_vm.py), from an image built once per machine
(tests/support/guest_image.py, `scripts/guest-image`).

One VM boots once for the whole module, its tests run in order on it, and the last one
powers it off and boots it a second time. The measured times (power-on to sshd, to Ready)
are printed, and written to `guest-times.json` in the test's directory.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.guest_image import ensure_image
from tests.support.guest_vm import (
    IMDS_ADDRESS,
    WIRESERVER_ADDRESS,
    GuestNetwork,
    GuestVM,
    azure_mac,
    ssh_key,
)
from tests.support.server import RunningServer, start_server

pytestmark = pytest.mark.slow

VM_NAME = "guest-boot-01"
COMPUTER_NAME = "oi-guest-01"
ADMIN = "azureuser"
GUEST_ADDRESS = "192.0.2.10"
# Power-on to sshd takes 100-180 s under TCG on a busy 2-core machine.
BOOT_TIMEOUT = 900.0
# How long waagent must run quietly.
WAAGENT_QUIET_SECONDS = 180.0


@dataclass
class Booted:
    network: GuestNetwork
    server: RunningServer
    vm: GuestVM
    admin_socket: Path
    times: dict[str, float] = field(default_factory=dict)
    workdir: Path = Path()

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        transport = httpx.HTTPTransport(uds=str(self.admin_socket))
        with httpx.Client(transport=transport, base_url="http://openimds") as client:
            headers = {"Authorization": f"Bearer {self.server.admin_token}"}
            return client.request(method, path, headers=headers, timeout=30, **kwargs)

    def guest_state(self) -> dict[str, Any] | None:
        """What openimds knows of the VM's guest agents (`GET /vms/{name}/guest`)."""
        answer = self.admin("GET", f"/vms/{VM_NAME}/guest")
        return answer.json() if answer.status_code == 200 else None

    def record(self, name: str, seconds: float) -> None:
        self.times[name] = round(seconds, 1)
        (self.workdir / "guest-times.json").write_text(json.dumps(self.times, indent=2))
        print(f"guest: {name} {seconds:.1f} s", file=sys.stderr)


def _vm_config(vm_id: str, mac: str, public_key: str) -> dict[str, Any]:
    return {
        "name": VM_NAME,
        "addresses": [GUEST_ADDRESS],
        "instance": {
            "compute": {
                "name": VM_NAME,
                "vmId": vm_id,
                "vmSize": "Standard_B2s",
                "location": "westeurope",
                "osType": "Linux",
                "osProfile": {
                    "adminUsername": ADMIN,
                    "computerName": COMPUTER_NAME,
                    "disablePasswordAuthentication": "true",
                },
                "publicKeys": [
                    {"keyData": public_key, "path": f"/home/{ADMIN}/.ssh/authorized_keys"}
                ],
            },
            "network": {
                "interface": [
                    {
                        "macAddress": mac,
                        "ipv4": {
                            "ipAddress": [
                                {"privateIpAddress": GUEST_ADDRESS, "publicIpAddress": ""}
                            ],
                            "subnet": [{"address": "192.0.2.0", "prefix": "24"}],
                        },
                        "ipv6": {"ipAddress": []},
                    }
                ]
            },
        },
    }


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    if os.geteuid() != 0:
        pytest.fail("booting a guest needs root (network namespace, tap, debootstrap)")
    workdir = tmp_path_factory.mktemp("guest")
    started = time.monotonic()
    image = ensure_image(log=workdir / "image-build.log")
    build_seconds = time.monotonic() - started
    key, public_key = ssh_key(workdir)
    vm_id = str(uuid.uuid4())
    mac = azure_mac()
    config = workdir / "vm.json"
    config.write_text(json.dumps(_vm_config(vm_id, mac, public_key)))
    admin_socket = workdir / "admin.sock"
    with GuestNetwork(workdir) as network:
        listeners = [
            "--listen",
            f"{IMDS_ADDRESS}:80",
            "--admin-listen",
            f"unix:{admin_socket}",
            "--wireserver-listen",
            f"{WIRESERVER_ADDRESS}:80",
            "--hostgaplugin-listen",
            f"{WIRESERVER_ADDRESS}:32526",
        ]
        server = start_server(
            workdir, config=str(config), prefix=network.exec_prefix(), args=listeners
        )
        try:
            network.start_dhcp({mac: GUEST_ADDRESS})
            vm = GuestVM(network, image, vm_id, mac, GUEST_ADDRESS, key, user=ADMIN)
            booted = Booted(network, server, vm, admin_socket, workdir=workdir)
            if build_seconds > 5:
                booted.record("image build", build_seconds)
            vm.boot()
            booted.record("boot to sshd", vm.wait_for_sshd(BOOT_TIMEOUT))
            booted.record("boot to login", vm.wait_for("true", timeout=BOOT_TIMEOUT))
            yield booted
            _keep_guest_logs(booted)
        finally:
            server.stop()
            (workdir / "openimds.log").write_text(server.output)
    print(f"guest: logs in {workdir}", file=sys.stderr)


def _keep_guest_logs(booted: Booted) -> None:
    """The agents' logs beside the console's, for whoever reads a failure."""
    for path in ("/var/log/cloud-init.log", "/var/log/waagent.log"):
        with contextlib.suppress(Exception):
            done = booted.vm.ssh(f"sudo cat {path}", check=False, timeout=60)
            (booted.workdir / Path(path).name).write_text(done.stdout)


def _guest_file(booted: Booted, path: str) -> str:
    return booted.vm.ssh(f"sudo cat {path}").stdout


def test_azure_datasource_sets_hostname_user_and_key(booted: Booted) -> None:
    vm = booted.vm
    assert vm.ssh("systemd-detect-virt", check=False).stdout.strip() == "microsoft"
    # The datasource cloud-init chose, by the chassis asset tag (no datasource_list).
    assert vm.ssh("cloud-id").stdout.strip() == "azure"
    data = json.loads(_guest_file(booted, "/run/cloud-init/instance-data.json"))
    assert data["v1"]["platform"] == "azure"
    # The VM it crawled is the one openimds serves.
    assert data["v1"]["instance_id"].lower() == vm.vm_id
    assert vm.ssh("hostname").stdout.strip() == COMPUTER_NAME
    assert vm.ssh("id -un").stdout.strip() == ADMIN  # ssh with the IMDS key worked
    authorized = _guest_file(booted, f"/home/{ADMIN}/.ssh/authorized_keys")
    assert vm.key.with_suffix(".pub").read_text().split()[1] in authorized
    assert vm.ssh("sudo -n true", check=False).returncode == 0  # admin rights
    log = _guest_file(booted, "/var/log/cloud-init.log")
    assert "metadata/instance?api-version=2021-08-01&extended=true" in log
    # The network was rendered from what IMDS says of the NIC (its MAC).
    assert GUEST_ADDRESS in vm.ssh("ip -4 -o address show dev eth0").stdout


DRAIN = r"""
set -eu
url='http://169.254.169.254/metadata/scheduledevents?api-version=2020-07-01'
doc=$(curl -sf -H Metadata:true "$url")
echo "$doc"
ids=$(printf '%s' "$doc" | python3 -c '
import json, sys
for event in json.load(sys.stdin)["Events"]:
    if event["EventStatus"] == "Scheduled":
        print(event["EventId"])')
for id in $ids; do
  # (a real handler drains its workload here)
  curl -sf -H Metadata:true -d "{\"StartRequests\":[{\"EventId\":\"$id\"}]}" "$url"
  echo "approved $id"
done
"""


def test_scheduled_event_seen_and_approved_from_guest(booted: Booted) -> None:
    scheduled = booted.server.cli(
        "events", "schedule", "Reboot", "--vm", VM_NAME, "--not-before", "+30m"
    )
    assert scheduled.returncode == 0, scheduled.stderr
    event_id = scheduled.stdout.strip().split()[-1]
    drained = booted.vm.ssh("bash -s", stdin=DRAIN)
    assert event_id in drained.stdout
    assert f"approved {event_id}" in drained.stdout
    listed = booted.server.cli("events", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    events = {e["eventId"]: e for e in json.loads(listed.stdout)["events"]}
    # One VM, approval policy "all": its approval starts the event.
    assert [a["vm"] for a in events[event_id]["approvals"]] == [VM_NAME]
    assert events[event_id]["state"] == "Started", events[event_id]
    after = booted.vm.ssh(
        "curl -sf -H Metadata:true "
        "'http://169.254.169.254/metadata/scheduledevents?api-version=2020-07-01'"
    )
    assert json.loads(after.stdout)["Events"][0]["EventStatus"] == "Started"


def test_cloud_init_reports_ready_and_openimds_shows_it(booted: Booted) -> None:
    log = _guest_file(booted, "/var/log/cloud-init.log")
    assert "Reported ready to Azure fabric" in log
    assert "Error communicating with Azure fabric" not in log
    deadline = time.monotonic() + 60
    state = booted.guest_state()
    while not _reported_ready(state) and time.monotonic() < deadline:
        time.sleep(2)
        state = booted.guest_state()
    assert _reported_ready(state), state
    assert state is not None
    # cloud-init reports ready from cloud-init-local, before the rest of the boot; waagent
    # then reports NotReady (provisioning) and Ready again, which is what openimds's
    # ready_since keeps.
    booted.record("boot to cloud-init Ready (guest uptime)", _ready_uptime(booted, log))
    booted.record("boot to Ready (openimds ready_since)", _ready_after_power_on(booted, state))


def _reported_ready(state: dict[str, Any] | None) -> bool:
    return state is not None and (state.get("health") or {}).get("state") == "Ready"


def _ready_after_power_on(booted: Booted, state: dict[str, Any]) -> float:
    """Seconds from power-on to the Ready report, by openimds's clock (to the second)."""
    at = calendar.timegm(time.strptime(state["ready_since"], "%Y-%m-%dT%H:%M:%SZ"))
    return at - booted.vm.powered_on_at


def _ready_uptime(booted: Booted, log: str) -> float:
    """The guest's uptime when cloud-init reported ready (its log's time stamp)."""
    line = next(x for x in log.splitlines() if "Reported ready to Azure fabric" in x)
    stamp = line.split(" - ")[0].split(",")[0]
    reported, now, uptime = booted.vm.ssh(
        f"echo $(date -d '{stamp}' +%s) $(date +%s) $(cut -d' ' -f1 /proc/uptime)"
    ).stdout.split()
    return float(reported) - (float(now) - float(uptime))


WIRE_TROUBLE = re.compile(
    r"wireserver|hostgaplugin|host plugin|goal ?state|168\.63\.129\.16|32526|"
    r"status|protocol|health|provision",
    re.IGNORECASE,
)


def test_waagent_provisions_uploads_status_and_stays_quiet(booted: Booted) -> None:
    vm = booted.vm
    assert vm.ssh("systemctl is-active walinuxagent", check=False).stdout.strip() == "active"
    vm.wait_for("sudo test -f /var/lib/waagent/provisioned", timeout=300)
    # Let it run its goal-state loop (every 6 s) and status uploads for a few minutes.
    # Its start and the guest's uptime now, both in seconds since the guest's boot.
    started, uptime = vm.ssh(
        "echo $(systemctl show -P ActiveEnterTimestampMonotonic walinuxagent)"
        " $(cut -d' ' -f1 /proc/uptime)"
    ).stdout.split()
    time.sleep(max(0.0, int(started) / 1e6 + WAAGENT_QUIET_SECONDS - float(uptime)))
    log = _guest_file(booted, "/var/log/waagent.log")
    trouble = [
        line
        for line in log.splitlines()
        if re.search(r"\b(ERROR|WARNING)\b", line) and WIRE_TROUBLE.search(line)
    ]
    assert not trouble, "\n".join(trouble)
    assert "Finished provisioning" in log or "Provisioning complete" in log, log[-3000:]
    state = booted.guest_state()
    assert state is not None
    assert state["agent"]["status"] == "Ready", state
    assert state["agent"]["agent_version"].startswith("2.7"), state
    assert state["health"]["state"] == "Ready", state


def _goal_state_incarnation(booted: Booted) -> str:
    xml = booted.vm.ssh(
        "curl -sf -H 'x-ms-version: 2012-11-30' "
        f"'http://{WIRESERVER_ADDRESS}/machine/?comp=goalstate'"
    ).stdout
    found = re.search(r"<Incarnation>(\d+)</Incarnation>", xml)
    assert found, xml
    return found.group(1)


def _provisioning_marks(booted: Booted) -> str:
    """What a re-provisioning would change: host keys, the user's keys, the markers."""
    return booted.vm.ssh(
        "sudo sh -c 'cat /etc/ssh/ssh_host_ed25519_key.pub; cat /var/lib/cloud/data/instance-id;"
        f" stat -c %Y /home/{ADMIN}/.ssh/authorized_keys;"
        " ls -l --time-style=+%s /var/lib/cloud/instance/sem/ /var/lib/waagent/provisioned'",
        check=False,
    ).stdout


def test_second_boot_does_not_provision_again(booted: Booted) -> None:
    vm = booted.vm
    before = _provisioning_marks(booted)
    incarnation = _goal_state_incarnation(booted)
    vm.shutdown()
    vm.boot()
    timeout = BOOT_TIMEOUT
    booted.record("second boot to sshd", vm.wait_for_sshd(timeout))
    vm.wait_for("true", timeout=timeout)
    vm.wait_for(
        "cloud-init status --wait >/dev/null; test -f /run/cloud-init/result.json", timeout=timeout
    )
    assert vm.ssh("hostname").stdout.strip() == COMPUTER_NAME
    assert _provisioning_marks(booted) == before
    log = _guest_file(booted, "/var/log/cloud-init.log")
    second = log.rsplit("running 'init-local'", 1)[-1]
    assert "config-users-groups already ran" in second, second[-3000:]
    assert "Reported ready to Azure fabric" not in second
    vm.wait_for(
        "sudo grep -q 'Provisioning already completed, skipping' /var/log/waagent.log",
        timeout=300,
    )
    waagent = _guest_file(booted, "/var/log/waagent.log")
    assert waagent.count("Finished provisioning") == 1
    assert _goal_state_incarnation(booted) == incarnation
    state = booted.guest_state()
    assert state is not None
    assert str(state["incarnation"]) == incarnation, state

"""A fleet on a real network (root): a host namespace runs openimds on
169.254.169.254:80 (put there by `openimds net up`), three VM namespaces on a bridge call
it with unmodified clients (curl, azure-identity), and a fourth plays the signed edge
proxy. Each VM sees only its own data, tokens and scheduled events; forged proxy headers
are refused.

    host ns: br0 10.77.0.1/24, 169.254.169.254/32 on lo, openimds
      |-- vm1 ns: eth0 10.77.0.11   vm2: 10.77.0.12   vm3: 10.77.0.13
      `-- proxy ns: eth0 10.77.0.5 (proxy.sources)

Namespace names carry the pid and a random tag, so parallel runs never collide; they are
removed by the fixture's finaliser whatever the test did.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from openimds.core.signed_caller import proxy_signature
from tests.support.server import RunningServer, start_server

SECRET = "netns-proxy-secret-0123456789"
VMS = {"vm-1": "10.77.0.11", "vm-2": "10.77.0.12", "vm-3": "10.77.0.13"}
PROXY = "10.77.0.5"
IMDS = "http://169.254.169.254"
NAME = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"
EVENTS = "/metadata/scheduledevents?api-version=2020-07-01"
FLEET = (
    "events:\n  approval: all\nproxy:\n  sources: [" + PROXY + "]\nvms:\n"
    + "".join(
        f"  - addresses: [{address}]\n"
        f"    identities: {{systemAssigned: {{}}}}\n"
        f"    instance: {{compute: {{name: {name}}}}}\n"
        for name, address in VMS.items()
    )
)  # fmt: skip
GET_TOKEN = """
import json
from azure.identity import ManagedIdentityCredential
token = ManagedIdentityCredential().get_token("https://vault.azure.net/.default")
print(json.dumps({"token": token.token}))
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@dataclass
class Network:
    host: str
    vms: dict[str, str]  # VM name -> its namespace
    proxy: str

    def run(self, ns: str, *cmd: str) -> subprocess.CompletedProcess[str]:
        """A command inside namespace `ns` with a minimal environment (no proxy
        variables, no token-source variables)."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        if "PYTHONPATH" in os.environ:  # this checkout's openimds for `net up`
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        return subprocess.run(
            ["ip", "netns", "exec", ns, *cmd],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )

    def curl(self, ns: str, path: str, *extra: str) -> tuple[int, str]:
        """curl in `ns` against the real address; (status, body)."""
        done = self.run(
            ns, "curl", "-sS", "-m", "10", "-H", "Metadata: true", "-w", "\n%{http_code}",
            *extra, IMDS + path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        body, _, status = done.stdout.rpartition("\n")
        return int(status), body


def _namespaces(tag: str) -> Network:
    host = f"oimds{tag}h"
    vms = {name: f"oimds{tag}v{i}" for i, name in enumerate(VMS, 1)}
    return Network(host, vms, f"oimds{tag}p")


def _build(net: Network, created: list[str]) -> None:
    for ns in (net.host, *net.vms.values(), net.proxy):
        _ip("netns", "add", ns)
        created.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")
    _ip("-n", net.host, "link", "add", "br0", "type", "bridge")
    _ip("-n", net.host, "addr", "add", "10.77.0.1/24", "dev", "br0")
    _ip("-n", net.host, "link", "set", "br0", "up")
    members = [*zip(net.vms.values(), VMS.values(), strict=True), (net.proxy, PROXY)]
    for i, (ns, address) in enumerate(members):
        port = f"port{i}"
        _ip("-n", net.host, "link", "add", port, "type", "veth", "peer", "name", "eth0",
            "netns", ns)  # fmt: skip
        _ip("-n", net.host, "link", "set", port, "master", "br0", "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "route", "add", "default", "via", "10.77.0.1")


@pytest.fixture
def network() -> Iterator[Network]:
    if os.geteuid() != 0:
        pytest.fail("this test creates network namespaces and must run as root")
    net = _namespaces(f"{os.getpid()}{secrets.token_hex(2)}")
    created: list[str] = []
    try:
        _build(net, created)
        up = net.run(net.host, sys.executable, "-m", "openimds", "net", "up")
        assert up.returncode == 0, up.stderr
        yield net
    finally:
        for ns in reversed(created):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


@pytest.fixture
def fleet(network: Network, tmp_path: Path) -> Iterator[tuple[Network, RunningServer, Admin]]:
    config = tmp_path / "fleet.yaml"
    config.write_text(FLEET)
    socket_path = tmp_path / "admin.sock"  # a Unix socket crosses network namespaces
    running = start_server(
        tmp_path,
        config=str(config),
        prefix=["ip", "netns", "exec", network.host],
        args=["--listen", "169.254.169.254:80", "--admin-listen", f"unix:{socket_path}"],
        env={"OPENIMDS_PROXY_SECRET": SECRET},
    )
    try:
        yield network, running, Admin(str(socket_path), running.admin_token)
    finally:
        running.stop()


class Admin:
    def __init__(self, socket_path: str, token: str) -> None:
        self.socket_path = socket_path
        self.token = token

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        transport = httpx.HTTPTransport(uds=self.socket_path)
        with httpx.Client(transport=transport, base_url="http://admin") as client:
            headers = {"Authorization": f"Bearer {self.token}"}
            return client.request(method, path, headers=headers, **kwargs)


def signed(vm: str, secret: str = SECRET) -> list[str]:
    now = int(time.time())
    sig = proxy_signature(secret.encode(), vm, now)
    return ["-H", f"X-OpenIMDS-VM: {vm}", "-H", f"X-OpenIMDS-Timestamp: {now}",
            "-H", f"X-OpenIMDS-Signature: {sig}"]  # fmt: skip


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    return decoded


def wait_for(check: Callable[[], Any], timeout: float = 6.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {check}")


def test_each_vm_sees_only_its_own_data_and_tokens(
    fleet: tuple[Network, RunningServer, Admin],
) -> None:
    net, _, _ = fleet
    for name, ns in net.vms.items():
        assert net.curl(ns, NAME) == (200, name)
        status, body = net.curl(ns, "/metadata/instance?api-version=2021-02-01")
        assert status == 200 and json.loads(body)["compute"]["name"] == name
        # azure-identity as an application on the VM would run it: nothing configured.
        got = net.run(ns, sys.executable, "-c", GET_TOKEN)
        assert got.returncode == 0, got.stderr
        token = claims(json.loads(got.stdout)["token"])
        assert token["xms_mirid"].endswith(f"/virtualMachines/{name}")
    # The bridge's own address is no VM's: an unknown caller.
    assert net.curl(net.host, NAME)[0] == 404


def test_scheduled_events_and_approvals_stay_with_their_vm(
    fleet: tuple[Network, RunningServer, Admin],
) -> None:
    net, _, admin = fleet
    scheduled = admin("POST", "/events", json={"type": "Reboot", "target": "vm:vm-2",
                                               "notBefore": "+10m"})  # fmt: skip
    assert scheduled.status_code == 201, scheduled.text
    event_id = scheduled.json()["events"][0]["eventId"]
    seen = {name: json.loads(net.curl(ns, EVENTS)[1]) for name, ns in net.vms.items()}
    assert [e["EventId"] for e in seen["vm-2"]["Events"]] == [event_id]
    assert seen["vm-1"]["Events"] == [] and seen["vm-3"]["Events"] == []

    body = json.dumps({"StartRequests": [{"EventId": event_id}]})
    post = ("-X", "POST", "-H", "Content-Type: application/json", "-d", body)
    # vm-1 approves an event that is not its own: it does not start.
    net.curl(net.vms["vm-1"], EVENTS, *post)
    (event,) = admin("GET", "/events").json()["events"]
    assert event["state"] == "Scheduled" and event["approvals"] == []
    # vm-2's approval starts it.
    assert net.curl(net.vms["vm-2"], EVENTS, *post)[0] == 200
    started = wait_for(
        lambda: (
            (d := json.loads(net.curl(net.vms["vm-2"], EVENTS)[1]))["Events"]
            and d["Events"][0]["EventStatus"] == "Started"
        )
    )
    assert started
    assert json.loads(net.curl(net.vms["vm-1"], EVENTS)[1])["Events"] == []


def test_forged_proxy_headers_are_refused_and_the_proxy_is_believed(
    fleet: tuple[Network, RunningServer, Admin],
) -> None:
    net, _, admin = fleet
    vm1 = net.vms["vm-1"]
    # vm-1 claims to be vm-3: with a guessed secret, and with a valid signature it copied.
    for forged in (signed("vm-3", secret="guessed-secret-0123456"), signed("vm-3")):
        status, body = net.curl(vm1, NAME, *forged)
        assert status == 403 and json.loads(body)["error"].startswith("Forbidden.")
    assert net.curl(vm1, NAME) == (200, "vm-1")  # its own answers still work
    # The proxy: believed when it signs, refused when it does not.
    assert net.curl(net.proxy, NAME, *signed("vm-3")) == (200, "vm-3")
    assert net.curl(net.proxy, NAME, *signed("vm-3", secret="guessed-secret-0123456"))[0] == 403
    assert net.curl(net.proxy, NAME)[0] == 403
    metrics = admin("GET", "/metrics").text
    assert 'openimds_proxy_refused_total{reason="forged"} 2.0' in metrics
    assert 'openimds_proxy_refused_total{reason="bad-signature"} 1.0' in metrics
    assert 'openimds_proxy_refused_total{reason="unsigned"} 1.0' in metrics

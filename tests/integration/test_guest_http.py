"""The guest plane over HTTP: the WireServer and HostGAPlugin of a real server on loopback,
two VMs told apart by source address (127.0.0.1 and 127.0.0.2), their provisioning state
through the admin API and the CLI, kept across a restart and followed by a second node."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.server import RunningServer, start_server

ALSO = re.compile(r"wireserver on (http://\S+?)[,;\s].*hostgaplugin on (http://\S+)")


def _ssh_key(tmp: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(tmp / "id")],
        check=True,
    )
    return (tmp / "id.pub").read_text().strip()


def _fleet(key: str) -> str:
    return f"""
vms:
  - name: a
    addresses: [127.0.0.1]
    instance:
      compute:
        name: a
        vmId: 11111111-2222-3333-4444-555555555555
        publicKeys: [{{keyData: "{key}", path: /home/azureuser/.ssh/authorized_keys}}]
  - name: b
    addresses: [127.0.0.2]
    instance: {{compute: {{name: b, vmId: 66666666-2222-3333-4444-555555555555}}}}
"""


@dataclass
class Guest:
    server: RunningServer
    wire: str
    hostga: str

    def get(self, url: str, source: str = "127.0.0.1", **kw: object) -> httpx.Response:
        return self.call("GET", url, source, **kw)

    def call(
        self, method: str, url: str, source: str = "127.0.0.1", **kw: object
    ) -> httpx.Response:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(transport=transport) as client:
            return client.request(method, url, **kw)  # type: ignore[arg-type]

    def state(self, vm: str = "a") -> dict[str, object]:
        answer = self.server.admin("GET", f"/vms/{vm}/guest")
        assert answer.status_code == 200, answer.text
        data: dict[str, object] = answer.json()
        return data

    def goal_state(self, source: str = "127.0.0.1") -> ET.Element:
        answer = self.get(self.wire + "/machine/?comp=goalstate", source)
        assert answer.status_code == 200, answer.text
        return ET.fromstring(answer.text)

    def health(self, state: str, source: str = "127.0.0.1", **ids: str) -> httpx.Response:
        goal = self.goal_state(source)
        container = ids.get("container") or goal.findtext("Container/ContainerId")
        instance = ids.get("instance") or goal.findtext(
            "Container/RoleInstanceList/RoleInstance/InstanceId"
        )
        details = ids.get("details", "")
        body = (
            '<?xml version="1.0" encoding="utf-8"?><Health><GoalStateIncarnation>1'
            f"</GoalStateIncarnation><Container><ContainerId>{container}</ContainerId>"
            f"<RoleInstanceList><Role><InstanceId>{instance}</InstanceId><Health><State>"
            f"{state}</State>{details}</Health></Role></RoleInstanceList></Container></Health>"
        )
        return self.call(
            "POST",
            self.wire + "/machine?comp=health",
            source,
            content=body,
            headers={"Content-Type": "text/xml; charset=utf-8", "x-ms-version": "2012-11-30"},
        )


def _start(tmp: Path, config: Path, state: str | None = None) -> Guest:
    server = start_server(
        tmp,
        config=str(config),
        state_path=state,
        args=["--wireserver-listen", "127.0.0.1:0", "--hostgaplugin-listen", "127.0.0.1:0"],
    )
    match = ALSO.search(server.output)
    assert match, server.output
    return Guest(server, match.group(1), match.group(2))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(_fleet(_ssh_key(tmp_path)))
    return path


@pytest.fixture
def guest(tmp_path: Path, config: Path) -> Iterator[Guest]:
    running = _start(tmp_path, config)
    try:
        yield running
    finally:
        running.server.stop()


def _urls(goal: ET.Element) -> dict[str, str]:
    config = goal.find("Container/RoleInstanceList/RoleInstance/Configuration")
    assert config is not None
    return {child.tag: child.text or "" for child in config}


def test_versions_and_goal_state_on_both_machine_paths(guest: Guest) -> None:
    versions = guest.get(guest.wire + "/?comp=versions")
    assert versions.status_code == 200 and "2012-11-30" in versions.text
    assert versions.headers["content-type"].startswith("text/xml")
    for path in ("/machine/?comp=goalstate", "/machine?comp=goalstate", "/machine?comp=GoalState"):
        answer = guest.get(guest.wire + path, headers={"x-ms-version": "2012-11-30"})
        assert answer.status_code == 200, path
        goal = ET.fromstring(answer.text)
        assert goal.findtext("Incarnation") == "1"
        instance = goal.findtext("Container/RoleInstanceList/RoleInstance/InstanceId")
        assert instance == "11111111-2222-3333-4444-555555555555.a"


def test_configuration_documents_from_the_goal_states_links(guest: Guest) -> None:
    urls = _urls(guest.goal_state())
    assert urls["HostingEnvironmentConfig"].startswith(guest.wire + "/machine/")
    for name in ("HostingEnvironmentConfig", "SharedConfig", "ExtensionsConfig", "FullConfig"):
        answer = guest.get(urls[name])
        assert answer.status_code == 200, name
        ET.fromstring(answer.text)
    extensions = ET.fromstring(guest.get(urls["ExtensionsConfig"]).text)
    blob = extensions.findtext("StatusUploadBlob") or ""
    # The blob URL takes a direct upload too (the agents' fallback).
    status = _status_blob("Ready")
    assert (
        guest.call("PUT", blob, content=status, headers={"x-ms-blob-type": "BlockBlob"}).status_code
        == 201
    )
    assert guest.state()["agent"]["status"] == "Ready"  # type: ignore[index]


def _transport(tmp: Path) -> tuple[Path, Path, str]:
    key, cert = tmp / "t.prv", tmp / "t.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-nodes",
            "-subj",
            "/CN=LinuxTransport",
            "-days",
            "30",
            "-newkey",
            "rsa:2048",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert, "".join(ln for ln in cert.read_text().splitlines() if "-----" not in ln)


@pytest.mark.parametrize("cipher", ["DES_EDE3_CBC", "AES128_CBC"])
def test_certificates_are_sealed_to_the_transport_certificate(
    guest: Guest, tmp_path: Path, cipher: str
) -> None:
    url = _urls(guest.goal_state())["Certificates"]
    key, cert, header = _transport(tmp_path)
    headers = {"x-ms-guest-agent-public-x509-cert": header, "x-ms-cipher-name": cipher}
    answer = guest.get(url, headers=headers)
    assert answer.status_code == 200, answer.text
    data = ET.fromstring(answer.text).findtext("Data") or ""
    p7m = tmp_path / "c.p7m"
    p7m.write_text(
        'MIME-Version:1.0\nContent-Type: application/x-pkcs7-mime; name="c.p7m"\n'
        "Content-Transfer-Encoding: base64\n\n" + data
    )
    opened = subprocess.run(
        ["openssl", "cms", "-decrypt", "-in", str(p7m), "-inkey", str(key), "-recip", str(cert)],
        check=True,
        capture_output=True,
    ).stdout
    pem = subprocess.run(
        ["openssl", "pkcs12", "-nodes", "-password", "pass:"],
        input=opened,
        check=True,
        capture_output=True,
    ).stdout
    pub = subprocess.run(
        ["openssl", "x509", "-noout", "-pubkey"], input=pem, check=True, capture_output=True
    ).stdout
    (tmp_path / "pub.pem").write_bytes(pub)
    ssh = subprocess.run(
        ["ssh-keygen", "-i", "-m", "PKCS8", "-f", str(tmp_path / "pub.pem")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[1]
    assert ssh == (tmp_path / "id.pub").read_text().split()[1]  # the VM's own SSH key
    # Another transport key cannot open it.
    (tmp_path / "other").mkdir()
    other_key, other_cert, _ = _transport(tmp_path / "other")
    refused = subprocess.run(
        [
            "openssl",
            "cms",
            "-decrypt",
            "-in",
            str(p7m),
            "-inkey",
            str(other_key),
            "-recip",
            str(other_cert),
        ],
        capture_output=True,
        check=False,
    )
    assert refused.returncode != 0
    assert guest.get(url).status_code == 400  # no transport certificate
    bad = guest.get(url, headers={**headers, "x-ms-cipher-name": "RC4"})
    assert bad.status_code == 400 and "x-ms-cipher-name" in bad.text


def test_health_reports_and_the_other_reports(guest: Guest) -> None:
    assert guest.state()["health"] is None
    failure = (
        "<Details><SubStatus>ProvisioningFailed</SubStatus><Description>"
        "result=error|reason=failure to find DHCP interface|agent=Cloud-Init/22.4.2"
        "</Description></Details>"
    )
    assert guest.health("NotReady", details=failure).status_code == 200
    health = guest.state()["health"]
    assert health["state"] == "NotReady" and health["substatus"] == "ProvisioningFailed"  # type: ignore[index]
    assert health["details"]["reason"] == "failure to find DHCP interface"  # type: ignore[index]
    assert guest.health("Ready").status_code == 200
    state = guest.state()
    assert state["health"]["state"] == "Ready" and state["ready_since"]  # type: ignore[index]
    assert "provisioning succeeded" in str(state["summary"])
    assert state["goal_state_fetched_at"]
    for path, status in (
        ("/machine?comp=telemetrydata", 200),
        ("/machine?comp=roleProperties", 202),
        ("/HealthService", 200),
    ):
        assert guest.call("POST", guest.wire + path, content=b"<x/>").status_code == status
    answer = guest.call("POST", guest.wire + "/provisioning/health", json={"state": "NotReady"})
    assert answer.status_code == 200
    assert guest.state()["health"]["state"] == "NotReady"  # type: ignore[index]


def _status_blob(status: str) -> bytes:
    return json.dumps(
        {
            "version": "1.1",
            "aggregateStatus": {
                "guestAgentStatus": {
                    "version": "2.7.3.0",
                    "status": status,
                    "formattedMessage": {"lang": "en-US", "message": "Guest Agent is running"},
                },
                "handlerAggregateStatus": [],
            },
        }
    ).encode()


def test_host_plugin(guest: Guest) -> None:
    versions = guest.get(guest.hostga + "/versions")
    assert versions.status_code == 200 and "2015-09-01" in versions.json()
    assert guest.get(guest.hostga + "/health").status_code == 200
    assert guest.get(guest.hostga + "/vmSettings").status_code == 404
    wrapped = {
        "requestUri": "http://ignored/?comp=status",
        "headers": [{"headerName": "x-ms-blob-type", "headerValue": "BlockBlob"}],
        "content": base64.b64encode(_status_blob("Ready")).decode(),
    }
    assert guest.call("PUT", guest.hostga + "/status", json=wrapped).status_code == 200
    agent = guest.state()["agent"]
    assert agent["agent_version"] == "2.7.3.0" and agent["message"] == "Guest Agent is running"  # type: ignore[index]
    assert guest.call("PUT", guest.hostga + "/vmAgentLog", content=b"log").status_code == 200
    assert guest.call("PUT", guest.hostga + "/status", content=b"{").status_code == 400
    assert guest.state()["agent"] == agent


def test_each_vm_sees_only_itself(guest: Guest) -> None:
    a, b = guest.goal_state("127.0.0.1"), guest.goal_state("127.0.0.2")
    assert a.findtext("Container/ContainerId") != b.findtext("Container/ContainerId")
    assert (b.findtext(".//InstanceId") or "").endswith(".b")
    assert "Certificates" not in _urls(b)  # b has no SSH key: no certificates
    # b asking for a's documents, or reporting for a's role instance, gets nothing.
    a_config = _urls(a)["SharedConfig"]
    assert guest.get(a_config, "127.0.0.2").status_code == 404
    answer = guest.health(
        "Ready",
        "127.0.0.2",
        container=a.findtext("Container/ContainerId") or "",
        instance=a.findtext(".//InstanceId") or "",
    )
    assert answer.status_code == 400
    assert guest.state("a")["health"] is None and guest.state("b")["health"] is None
    assert guest.health("Ready", "127.0.0.2").status_code == 200
    assert guest.state("a")["health"] is None
    assert guest.state("b")["health"]["state"] == "Ready"  # type: ignore[index]


def test_an_unknown_caller_gets_what_the_metadata_listener_gives_one(guest: Guest) -> None:
    wire = guest.get(guest.wire + "/machine/?comp=goalstate", "127.0.0.3")
    transport = httpx.HTTPTransport(local_address="127.0.0.3")
    with httpx.Client(transport=transport) as client:
        metadata = client.get(
            guest.server.metadata_url + "/metadata/instance?api-version=2021-02-01",
            headers={"Metadata": "true"},
        )
    assert wire.status_code == metadata.status_code != 200
    assert wire.content == metadata.content
    hostga = guest.call("PUT", guest.hostga + "/status", "127.0.0.3", content=b"{}")
    assert hostga.status_code == metadata.status_code


@pytest.mark.parametrize(
    "body", [b"<Health", b"<Health><State>Up</State></Health>", b"", b"<!DOCTYPE a><Health/>"]
)
def test_malformed_health_is_a_400_and_changes_nothing(guest: Guest, body: bytes) -> None:
    assert guest.health("Ready").status_code == 200
    before = guest.state()["health"]
    answer = guest.call("POST", guest.wire + "/machine?comp=health", content=body)
    assert answer.status_code == 400 and answer.text.startswith("Bad request")
    assert guest.state()["health"] == before
    bad_json = guest.call("POST", guest.wire + "/provisioning/health", content=b"{")
    assert bad_json.status_code == 400 and "error" in bad_json.json()
    assert guest.state()["health"] == before


def test_the_journal_has_the_requests_without_the_certificate(guest: Guest, tmp_path: Path) -> None:
    url = _urls(guest.goal_state())["Certificates"]
    _, _, header = _transport(tmp_path)
    guest.get(url, headers={"x-ms-guest-agent-public-x509-cert": header})
    entries = guest.server.admin("GET", "/requests", params={"vm": "a"}).json()
    text = json.dumps(entries)
    assert "comp" in text and "goalstate" in text and "certificates" in text
    assert header[:40] not in text
    metrics = guest.server.admin("GET", "/metrics").text
    assert 'route="wire.goalstate"' in metrics
    assert "openimds_guest_vms" in metrics


def test_vm_show_and_vm_wait(guest: Guest) -> None:
    waited = guest.server.cli("vm", "wait", "a", "--ready", "--timeout", "0.5")
    assert waited.returncode == 1
    assert "did not report Ready within 0.5 s" in waited.stderr
    assert "Traceback" not in waited.stderr
    assert guest.health("Ready").status_code == 200
    waited = guest.server.cli("vm", "wait", "a", "--ready", "--timeout", "5")
    assert waited.returncode == 0, waited.stderr
    assert "provisioning succeeded" in waited.stdout
    shown = guest.server.cli("vm", "show", "a")
    assert shown.returncode == 0 and "# guest: " in shown.stdout
    assert "# guest: " not in guest.server.cli("vm", "show", "a", "--json").stdout
    missing = guest.server.cli("vm", "wait", "nobody", "--ready", "--timeout", "1")
    # An unknown VM is the caller's mistake (exit 2, as `vm media` says it), not a timeout.
    assert missing.returncode == 2 and missing.stderr == "openimds: no VM named nobody\n"


def test_state_and_incarnation_survive_a_restart(tmp_path: Path, config: Path) -> None:
    first = _start(tmp_path, config)
    try:
        assert first.health("Ready").status_code == 200
        assert first.goal_state().findtext("Incarnation") == "1"
        # A new SSH key changes the goal state: a new incarnation.
        vm = first.server.admin("GET", "/vms/a").json()
        vm["instance"]["compute"]["publicKeys"] = []
        body = {k: v for k, v in vm.items() if k not in ("name", "revision")}
        assert first.server.admin("PUT", "/vms/a", json=body).status_code == 200
        assert first.goal_state().findtext("Incarnation") == "2"
        # A change outside the goal state (a tag) leaves it.
        body["instance"]["compute"]["tagsList"] = [{"name": "k", "value": "v"}]
        assert first.server.admin("PUT", "/vms/a", json=body).status_code == 200
        assert first.goal_state().findtext("Incarnation") == "2"
        time.sleep(1.5)  # the incarnation is written by the once-a-second job
    finally:
        first.server.stop()
    second = _start(tmp_path, config, state=first.server.state_path)
    try:
        assert second.state()["health"]["state"] == "Ready"  # type: ignore[index]
        # The file's VM has its SSH key again: the goal state changed once more, and the
        # incarnation goes forward, never back to 1.
        assert second.goal_state().findtext("Incarnation") == "3"
    finally:
        second.server.stop()


def test_a_second_node_follows(tmp_path: Path, config: Path, postgres_url: str) -> None:
    one = _start(tmp_path, config, state=postgres_url)
    two = _start(tmp_path, config, state=postgres_url)
    try:
        assert one.health("Ready").status_code == 200
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and two.state()["health"] is None:
            time.sleep(0.05)
        assert two.state()["health"]["state"] == "Ready"  # type: ignore[index]
        assert two.goal_state().findtext("Incarnation") == one.goal_state().findtext("Incarnation")
    finally:
        one.server.stop()
        two.server.stop()


PROXIED = """
proxy: {secret: edge-proxy-secret-0123456789}
vms:
  - name: a
    instance: {compute: {name: a, vmId: 11111111-2222-3333-4444-555555555555}}
  - name: b
    instance: {compute: {name: b, vmId: 66666666-2222-3333-4444-555555555555}}
"""


def test_behind_the_signed_edge_proxy_the_proxy_names_the_vm(tmp_path: Path) -> None:
    from openimds.core.signed_caller import proxy_signature

    config = tmp_path / "proxied.yaml"
    config.write_text(PROXIED)
    running = _start(tmp_path, config)
    try:
        now = int(time.time())
        signed = {
            "X-OpenIMDS-VM": "b",
            "X-OpenIMDS-Timestamp": str(now),
            "X-OpenIMDS-Signature": proxy_signature(b"edge-proxy-secret-0123456789", "b", now),
        }
        answer = running.get(running.wire + "/machine/?comp=goalstate", headers=signed)
        assert answer.status_code == 200, answer.text
        assert (ET.fromstring(answer.text).findtext(".//InstanceId") or "").endswith(".b")
        forged = {**signed, "X-OpenIMDS-VM": "a"}
        refused = running.get(running.wire + "/machine/?comp=goalstate", headers=forged)
        metadata = httpx.get(
            running.server.metadata_url + "/metadata/instance?api-version=2021-02-01",
            headers={"Metadata": "true", **forged},
        )
        assert refused.status_code == metadata.status_code != 200
        assert refused.content == metadata.content
        unsigned = running.get(running.wire + "/machine/?comp=goalstate")
        assert unsigned.status_code != 200
    finally:
        running.server.stop()


def test_the_consoles_vm_page_shows_the_agents_state(guest: Guest) -> None:
    # The page gathers much (an attested document, token claims): generous on a busy machine.
    with httpx.Client(base_url=guest.server.admin_url, timeout=60) as client:
        login = client.post("/console/login", data={"token": guest.server.admin_token})
        assert login.status_code == 303
        assert "no health report yet" in client.get("/console/vms/a").text
        assert guest.health("Ready").status_code == 200
        page = client.get("/console/vms/a").text
        assert "Guest agent" in page and "provisioning succeeded" in page

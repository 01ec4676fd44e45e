"""`openimds capture` over real sockets: a VM captured from one openimds and served by a
second looks the same to its callers; a metadata service that fails part by part leaves
those parts out with a note, and a token is never written anywhere."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tests.support.cli import run_openimds
from tests.support.imds import reference_vm_data
from tests.support.server import RunningServer, start_server

UAI = (
    "/subscriptions/8d10da13-8125-4ba9-a717-bf7490507b3d/resourceGroups/demo-rg/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/lab-identity"
)
TOKEN = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"


def _claims(server: RunningServer, selector: str = "") -> dict[str, Any]:
    answer = server.get(TOKEN + selector)
    assert answer.status_code == 200, answer.text
    payload = answer.json()["access_token"].split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return {key: claims[key] for key in ("tid", "oid", "appid", "xms_mirid")}


@pytest.fixture
def source(tmp_path: Path) -> Iterator[RunningServer]:
    """The "production" VM: the demo VM's data with identities whose ids the server
    generated, so only a capture can carry them over."""
    vm = reference_vm_data()
    vm["identities"] = {"systemAssigned": True, "userAssigned": [{"resourceId": UAI}]}
    config = tmp_path / "production.json"
    config.write_text(json.dumps(vm))
    server = start_server(tmp_path, config=str(config))
    yield server
    server.stop()


def test_a_captured_vm_is_served_the_same_by_another_server(
    source: RunningServer, tmp_path: Path
) -> None:
    user_client_id = _claims(source, f"&msi_res_id={UAI}")["appid"]
    output = tmp_path / "captured.yaml"
    result = run_openimds(
        "capture", "--url", source.metadata_url, "--client-id", user_client_id, "-o", str(output)
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"captured demo-vm (2 identities) into {output}\n"
    text = output.read_text()
    assert output.stat().st_mode & 0o777 == 0o600  # userData may hold a secret
    assert "access_token" not in text and "eyJ" not in text  # ids only, never the token

    (tmp_path / "lab").mkdir(mode=0o700)  # it holds a state store: private
    lab = start_server(tmp_path / "lab", config=str(output))
    try:
        for version in ("2025-04-07", "2019-06-01"):
            path = f"/metadata/instance?api-version={version}"
            assert lab.get(path).json() == source.get(path).json()
        for path in (
            "/metadata/loadbalancer?api-version=2020-10-01",
            "/metadata/instance/compute/userData?api-version=2021-01-01&format=text",
            "/metadata/identity/info?api-version=2018-02-01",
        ):
            assert lab.get(path).content == source.get(path).content
        assert _claims(lab) == _claims(source)  # system-assigned
        selector = f"&client_id={user_client_id}"
        assert _claims(lab, selector) == _claims(source, selector)
        assert _claims(lab, selector)["xms_mirid"] == UAI
        assert lab.cli("vm", "import", str(output)).stdout == "unchanged  demo-vm\n"
    finally:
        lab.stop()


class _FlakyImds(BaseHTTPRequestHandler):
    """An IMDS whose parts fail each its own way: userData 404, the load balancer a
    redirect, identity info never answers in time, tokens carry a recognisable token."""

    release = threading.Event()
    seen: ClassVar[list[tuple[str, str | None]]] = []
    token = (
        "eyJhbGciOiJub25lIn0."
        + base64.urlsafe_b64encode(
            json.dumps({"tid": "", "oid": "not-a-guid", "appid": "x"}).encode()
        )
        .decode()
        .rstrip("=")
        + ".secret-signature"
    )

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Metadata")))
        if self.path.startswith("/metadata/instance?"):
            self._send(200, {"compute": {"name": "flaky", "location": "x", "brandNew": "1"}})
        elif self.path.startswith("/metadata/loadbalancer"):
            self.send_response(307)
            self.send_header("Location", "http://example.invalid/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path.startswith("/metadata/identity/info"):
            self.release.wait(10)
            self._send(200, {"tenantId": "late"})
        elif self.path.startswith("/metadata/identity/oauth2/token"):
            self._send(200, {"access_token": self.token, "client_id": "x"})
        else:
            self._send(404, {"error": "Not found"})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyImds)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _FlakyImds.release.set()
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_each_failing_part_is_left_out_with_a_note(flaky: str, tmp_path: Path) -> None:
    output = tmp_path / "flaky.json"
    result = run_openimds("capture", "--url", flaky, "--timeout", "0.5", "-o", str(output))
    assert result.returncode == 0, result.stderr
    notes = result.stderr.splitlines()
    assert notes == [
        "openimds: capture: userData: answered 404 (Not found); left out",
        "openimds: capture: load balancer: answered 307 (a redirect; not followed); left out",
        f"openimds: capture: identity info: no answer from {flaky} in time; left out",
        "openimds: capture: left out instance.compute.brandNew: not in openimds' VM model",
        "openimds: capture: identity x: its token carries no appid/oid GUIDs; skipped",
        f"captured flaky (0 identities) into {output}",
    ]
    assert json.loads(output.read_text()) == {
        "name": "flaky",
        "instance": {"compute": {"name": "flaky", "location": "x"}},
    }
    assert _FlakyImds.token not in result.stdout + result.stderr + output.read_text()
    assert all(metadata == "true" for _, metadata in _FlakyImds.seen)
    assert not any("example.invalid" in path for path, _ in _FlakyImds.seen)


def test_without_the_instance_document_nothing_is_written(tmp_path: Path) -> None:
    output = tmp_path / "none.yaml"
    result = run_openimds("capture", "--url", "http://127.0.0.1:1", "-o", str(output))
    assert result.returncode == 1
    assert result.stderr.startswith(
        "openimds: capture from http://127.0.0.1:1 failed: the instance document: cannot reach"
    )
    assert result.stderr.count("\n") == 1
    assert not output.exists()


def test_a_captured_file_is_yaml_unless_it_ends_in_json(source: RunningServer) -> None:
    result = run_openimds("capture", "--url", source.metadata_url, "--name", "lab-7")
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert data["name"] == "lab-7"
    assert data["identities"]["systemAssigned"]["clientId"] == _claims(source)["appid"]


def test_an_address_that_is_not_one_is_refused_before_anything(tmp_path: Path) -> None:
    output = tmp_path / "lab.yaml"
    result = run_openimds(
        "capture", "--url", "http://127.0.0.1:9", "--address", "notanip", "-o", str(output)
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert "'--address'" in errors[0] and "'notanip'" in errors[0]
    assert "capture from" not in result.stderr  # refused before any request
    assert not output.exists()


def test_capturing_over_a_readable_file_leaves_it_the_owners_alone(
    source: RunningServer, tmp_path: Path
) -> None:
    output = tmp_path / "lab.yaml"
    output.write_text("old\n")
    output.chmod(0o644)
    result = run_openimds("capture", "--url", source.metadata_url, "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert output.stat().st_mode & 0o777 == 0o600
    assert "old" not in output.read_text()


def test_transient_answers_are_retried_with_backoff_and_said(
    source: RunningServer, tmp_path: Path
) -> None:
    # The instance document answers 410, 429 and 503 before it is served; userData 500
    # on every try.
    for rule in (
        {"path": "/metadata/instance", "sequence": [410, 429, 503]},
        {"path": "/metadata/instance/compute/userData", "status": 500},
    ):
        assert source.admin("POST", "/faults", json=rule).status_code == 201
    output = tmp_path / "retried.yaml"
    result = run_openimds("capture", "--url", source.metadata_url, "-o", str(output))
    assert result.returncode == 0, result.stderr
    notes = result.stderr.splitlines()
    instance = "openimds: capture: the instance document: answered"
    assert [note.split(" (")[0] + note.split(")")[-1] for note in notes[:3]] == [
        f"{instance} 410; retry 1 in 0.5 s",
        f"{instance} 429; retry 2 in 1 s",
        f"{instance} 503; retry 3 in 2 s",
    ], notes
    retries = [n for n in notes if n.startswith("openimds: capture: userData: answered 500")]
    assert len(retries) == 6  # five retries, then left out
    assert retries[-1].endswith("after 6 tries; left out")
    assert yaml.safe_load(output.read_text())["name"] == "demo-vm"


def test_one_identity_is_said_in_the_singular(tmp_path: Path) -> None:
    vm = reference_vm_data()
    vm["identities"] = {"systemAssigned": True}
    config = tmp_path / "one.json"
    config.write_text(json.dumps(vm))
    server = start_server(tmp_path, config=str(config))
    try:
        output = tmp_path / "one.yaml"
        result = run_openimds("capture", "--url", server.metadata_url, "-o", str(output))
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == f"captured demo-vm (1 identity) into {output}"

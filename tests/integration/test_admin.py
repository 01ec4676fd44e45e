"""The admin listener: its own port or Unix socket, a bearer token, metrics and OpenAPI."""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from tests.support.cli import run_openimds
from tests.support.server import RunningServer, start_server

DOC = "/metadata/instance?api-version=2021-02-01"
LEAF = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"


def test_healthz_is_public(live: RunningServer) -> None:
    response = httpx.get(live.admin_url + "/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize("path", ["/metrics", "/vms", "/openapi.json", "/no-such-route"])
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token-0123456789", "test-admin-token-0123456789"]
)
def test_other_routes_need_the_bearer_token(
    live: RunningServer, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.get(live.admin_url + path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/vms", "/openapi.json"])
def test_admin_routes_are_not_on_the_metadata_port(live: RunningServer, path: str) -> None:
    assert live.metadata_url != live.admin_url
    response = live.get(path + "?api-version=2021-02-01")
    assert response.status_code == 404
    assert "API isn't found" in response.json()["error"]
    auth = {"Authorization": f"Bearer {live.admin_token}"}
    assert live.get(path, headers=auth).status_code in (400, 404)


def test_metrics_count_requests_by_route_status_and_vm(live: RunningServer) -> None:
    for _ in range(3):
        assert live.get(LEAF).status_code == 200
    assert live.get(DOC, metadata=False).status_code == 400
    response = live.admin("GET", "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    counts = {
        (s.labels["route"], s.labels["status"], s.labels["vm"]): s.value
        for s in families["openimds_requests"].samples
        if s.name == "openimds_requests_total"
    }
    assert counts[("instance", "200", "demo-vm")] >= 3
    assert counts[("instance", "400", "demo-vm")] >= 1
    histogram = families["openimds_request_duration_seconds"]
    assert histogram.type == "histogram"
    buckets = [s for s in histogram.samples if s.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf"
    total = next(s for s in histogram.samples if s.name.endswith("_count")).value
    assert buckets[-1].value == total >= 4
    assert [b.value for b in buckets] == sorted(b.value for b in buckets)


def test_vms_lists_the_inventory(live: RunningServer) -> None:
    vms = live.admin("GET", "/vms").json()["vms"]
    assert [vm["name"] for vm in vms] == ["demo-vm"]
    assert vms[0]["instance"]["compute"]["name"] == "demo-vm"
    assert vms[0]["revision"] >= 1


def test_openapi_is_a_valid_document_listing_the_routes(live: RunningServer) -> None:
    document = live.admin("GET", "/openapi.json").json()
    validate(document)
    assert {"/healthz", "/metrics", "/vms"} <= set(document["paths"])
    assert "get" in document["paths"]["/vms"]


def test_admin_on_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "admin.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()  # a socket file nobody listens on, as a crash leaves it: replaced
    running = start_server(tmp_path, args=["--admin-listen", f"unix:{sock}"])
    try:
        assert running.admin_url == f"unix:{sock}"
        mode = os.stat(sock).st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o600
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as client:
            assert client.get("http://admin/healthz").status_code == 200
            assert client.get("http://admin/vms").status_code == 401
            auth = {"Authorization": f"Bearer {running.admin_token}"}
            assert client.get("http://admin/vms", headers=auth).json()["vms"][0]["name"]
        assert running.get(LEAF).text == "demo-vm"
    finally:
        assert running.stop() == 0
    assert not sock.exists()  # removed on shutdown


def test_token_is_generated_printed_once_and_reused(tmp_path: Path) -> None:
    state = str(tmp_path / "state" / "state.db")
    first = start_server(tmp_path, admin_token=None, state_path=state)
    try:
        token = first.admin_token
        assert len(token) >= 32
        assert first.output.count(token) == 1
        assert first.admin("GET", "/vms").status_code == 200
    finally:
        first.stop()
    second = start_server(tmp_path, admin_token=None, state_path=state)
    try:
        assert "generated an admin token" not in second.output
        assert token not in second.output
        response = httpx.get(
            second.admin_url + "/vms", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200
    finally:
        second.stop()
    assert token not in second.output
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)


def test_a_command_finds_the_token_of_the_server_on_a_unix_socket(tmp_path: Path) -> None:
    # As docs/recipes.md: `sudo openimds events list --admin-listen unix:...`, with neither
    # the token nor the service's state store at hand; the server generated its token.
    sock = tmp_path / "admin.sock"
    running = start_server(tmp_path, args=["--admin-listen", f"unix:{sock}"], admin_token=None)
    token_file = tmp_path / "admin.sock.token"
    try:
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        assert token_file.read_text() == running.admin_token
        listed = run_openimds("events", "list", "--admin-listen", f"unix:{sock}")
        assert (listed.returncode, listed.stdout) == (0, "no live events\n"), listed.stderr
    finally:
        assert running.stop() == 0
    assert not token_file.exists()  # removed on shutdown, with the socket

"""Real clients retry through scripted faults the way they retry on Azure, and get their
data: Debian's cloud-init 22.x Azure data source (404/410/429/500 retried 1 s apart) and
azure-identity's ManagedIdentityCredential (410, 429 and 5xx retried with backoff)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from azure.identity import ManagedIdentityCredential

from tests.clients.identity_support import SCOPE, SERVER_ENV, issued, point_sdks_at
from tests.clients.sandbox import client_path, serve_and_probe
from tests.support.server import RunningServer, server_fixture

pytestmark = pytest.mark.clients

SCRIPTED = """
faults:
  rules:
    - id: boot-like
      path: /metadata/instance
      sequence: [410, 429, 500, 200]
"""


def test_cloud_init_retries_410_429_500_and_provisions(tmp_path: Path) -> None:
    config = tmp_path / "faults.yaml"
    config.write_text(SCRIPTED)
    dist = client_path("cloud-init", "cloudinit")
    workdir = tmp_path / "cloud-init"
    started = time.monotonic()
    run = serve_and_probe(
        tmp_path,
        "cloud_init_probe.py",
        dist,
        lambda server: [server.metadata_url, str(workdir), "retries=5"],
        config=str(config),
    )
    took = time.monotonic() - started
    # cloud-init's readurl retried inside: each of its two fetches ended in a 200 ...
    assert [r["status"] for r in run.report["requests"]] == [200, 200]
    # ... after three failed tries of the boot crawl, as the server saw it.
    assert run.served("/metadata/instance") == [410, 429, 500, 200]
    assert run.served("/metadata/instance/network") == [200]
    assert run.report["imds"]["compute"]["name"] == "demo-vm"
    assert run.report["username"] == "azureuser"
    faulted = [line for line in run.access if "rule" in line]
    assert [line["rule"] for line in faulted] == ["boot-like"] * 3
    assert took >= 3  # cloud-init's own 1 s between tries


server = server_fixture("server", env=SERVER_ENV)


@pytest.mark.parametrize("sequence", [[410, 500, 200], [429, 503, 200]])
def test_azure_identity_retries_and_gets_its_token(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, sequence: list[int]
) -> None:
    point_sdks_at(server, monkeypatch)
    server.admin("DELETE", "/requests")
    rule = {"path": "/metadata/identity/oauth2/token", "sequence": sequence}
    assert server.admin("POST", "/faults", json=rule).status_code == 201
    token = ManagedIdentityCredential().get_token(SCOPE)
    journal = server.admin("GET", "/requests").json()["requests"]
    asked = [e for e in journal if e["path"] == "/metadata/identity/oauth2/token"]
    assert [e["status"] for e in asked] == sequence
    assert all(e["headers"]["Metadata"] == "true" for e in asked)
    assert token.token == issued(server)
    server.admin("DELETE", "/faults")

"""Managed identities over real HTTP: token and info endpoints, errors with exact bodies,
the identity throttle, and the admin listener's discovery, JWKS and key routes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import pytest

from tests.support.identity import DEMO, MALFORMED, NOT_FOUND, SYSTEM, USER
from tests.support.server import RunningServer, server_fixture, start_server

TOKEN = "/metadata/identity/oauth2/token"
V = "api-version=2018-02-01"
ARM = "resource=https%3A%2F%2Fmanagement.azure.com%2F"
NO_LIMIT = {"OPENIMDS_IDENTITY_RATE_LIMIT": "0"}


demo = server_fixture("demo", env=NO_LIMIT)


def test_token_body_and_headers(demo: RunningServer) -> None:
    r = demo.get(f"{TOKEN}?{V}&{ARM}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    body = r.json()
    assert all(isinstance(v, str) for v in body.values())
    assert body["resource"] == "https://management.azure.com/"
    assert body["client_id"] == SYSTEM["clientId"]
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"] == ""
    assert int(body["expires_on"]) > time.time() + 86000
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://management.azure.com/"
    assert claims["oid"] == SYSTEM["objectId"]
    assert claims["tid"] == DEMO["tenantId"]
    assert claims["exp"] == int(body["expires_on"])


def test_cached_token_then_bypass_cache(demo: RunningServer) -> None:
    url = f"{TOKEN}?{V}&resource=https%3A%2F%2Fcache.example"
    first = demo.get(url).json()["access_token"]
    assert demo.get(url).json()["access_token"] == first
    fresh = demo.get(url + "&bypass_cache=true").json()["access_token"]
    assert fresh != first
    assert demo.get(url).json()["access_token"] == fresh


@pytest.mark.parametrize(
    "selector",
    [
        f"client_id={USER['clientId']}",
        f"object_id={USER['objectId']}",
        "msi_res_id=" + USER["resourceId"].replace("/", "%2F"),
        "mi_res_id=" + USER["resourceId"],
    ],
)
def test_user_assigned_selectors(demo: RunningServer, selector: str) -> None:
    r = demo.get(f"{TOKEN}?{V}&{ARM}&{selector}")
    assert r.status_code == 200
    assert r.json()["client_id"] == USER["clientId"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (f"{V}&{ARM}&client_id=00000000-0000-0000-0000-000000000000", NOT_FOUND),
        (f"{V}&{ARM}&client_id={USER['clientId']}&object_id={USER['objectId']}", MALFORMED),
        (V, MALFORMED),
        (ARM, MALFORMED),
        (f"api-version=2017-12-01&{ARM}", MALFORMED),
        (f"{V}&{ARM}&bypass_cache=yes", MALFORMED),
        (f"{V}&{ARM}&{ARM}", MALFORMED),
        (f"{V}&{ARM}&format=text", MALFORMED),
    ],
)
def test_errors_are_400_with_exact_bodies(
    demo: RunningServer, query: str, expected: dict[str, str]
) -> None:
    r = demo.get(f"{TOKEN}?{query}")
    assert (r.status_code, r.json()) == (400, expected)
    assert r.headers["content-type"] == "application/json; charset=utf-8"


def test_missing_metadata_header(demo: RunningServer) -> None:
    r = demo.get(f"{TOKEN}?{V}&{ARM}", metadata=False)
    assert r.status_code == 400
    assert r.json() == {
        "error": "bad_request_102",
        "error_description": "Required metadata header not specified",
    }


def test_info(demo: RunningServer) -> None:
    r = demo.get(f"/metadata/identity/info?{V}")
    assert (r.status_code, r.json()) == (200, {"tenantId": DEMO["tenantId"]})


def test_metadata_listener_never_serves_the_issuer_documents(demo: RunningServer) -> None:
    for path in ("/.well-known/openid-configuration", "/discovery/keys", "/identity/keys"):
        r = demo.get(path)
        assert r.status_code in (400, 404)
        assert "keys" not in r.json() and "issuer" not in r.json()


def test_discovery_and_jwks_are_public_on_the_admin_listener(demo: RunningServer) -> None:
    tenant = DEMO["tenantId"]
    doc = httpx.get(f"{demo.admin_url}/{tenant}/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"https://sts.windows.net/{tenant}/"
    assert doc["jwks_uri"] == demo.admin_url + "/discovery/keys"
    root = httpx.get(f"{demo.admin_url}/.well-known/openid-configuration").json()
    assert root["issuer"] == doc["issuer"]
    jwks = httpx.get(doc["jwks_uri"]).json()
    assert jwks["keys"] and all("d" not in k and "p" not in k for k in jwks["keys"])
    token = demo.get(f"{TOKEN}?{V}&{ARM}").json()["access_token"]
    assert jwt.get_unverified_header(token)["kid"] in {k["kid"] for k in jwks["keys"]}


def test_key_management_needs_the_admin_token(demo: RunningServer) -> None:
    assert httpx.get(demo.admin_url + "/identity/keys").status_code == 401
    assert httpx.post(demo.admin_url + "/identity/keys/rotate").status_code == 401
    keys = demo.admin("GET", "/identity/keys").json()["keys"]
    assert sum(k["active"] for k in keys) == 1
    vms = demo.admin("GET", "/identity/vms").json()["vms"]
    assert vms[0]["identities"]["systemAssigned"]["clientId"] == SYSTEM["clientId"]


FLEET = """
vms:
  - name: generated
    addresses: [127.0.0.1]
    instance: {compute: {name: generated, subscriptionId: 8d10da13-8125-4ba9-a717-bf7490507b3d,
               resourceGroupName: rg}}
    identities: {systemAssigned: true, userAssigned: [{}]}
  - name: bare
    addresses: [127.0.0.2]
  - name: multi
    addresses: [127.0.0.3]
    identities:
      userAssigned: [{clientId: 0f0e0d0c-0b0a-4998-8776-655443322110}, {}]
"""


def _from(server: RunningServer, source: str, query: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport) as client:
        return client.get(f"{server.metadata_url}{TOKEN}?{query}", headers={"Metadata": "true"})


def test_fleet_identity_cases_and_stable_generated_ids(tmp_path: Path) -> None:
    config = tmp_path / "fleet.yaml"
    config.write_text(FLEET)
    server = start_server(tmp_path, config=str(config), env=NO_LIMIT)
    try:
        assert (_from(server, "127.0.0.2", f"{V}&{ARM}").json()) == NOT_FOUND
        r = _from(server, "127.0.0.3", f"{V}&{ARM}")
        assert r.status_code == 400
        assert r.json()["error_description"].startswith("Multiple user assigned identities exist")
        upper = "client_id=0F0E0D0C-0B0A-4998-8776-655443322110"  # ids compare case-insensitively
        assert _from(server, "127.0.0.3", f"{V}&{ARM}&{upper}").status_code == 200
        generated = server.admin("GET", "/identity/vms").json()["vms"][0]["identities"]
        system = generated["systemAssigned"]
        assert system["resourceId"].endswith("/Microsoft.Compute/virtualMachines/generated")
        assert generated["userAssigned"][0]["resourceId"].startswith(
            "/subscriptions/8d10da13-8125-4ba9-a717-bf7490507b3d/resourceGroups/rg/"
        )
        body = _from(server, "127.0.0.1", f"{V}&{ARM}").json()
        assert body["client_id"] == system["clientId"]
    finally:
        server.stop()
    again = start_server(tmp_path, config=str(config), env=NO_LIMIT, state_path=server.state_path)
    try:
        assert again.admin("GET", "/identity/vms").json()["vms"][0]["identities"] == generated
    finally:
        again.stop()


def test_identity_throttle_is_its_own_budget(tmp_path: Path) -> None:
    server = start_server(tmp_path)  # identity budget at its default, 20 requests/s
    try:
        with httpx.Client(headers={"Metadata": "true"}) as client:
            codes = [client.get(f"{server.metadata_url}{TOKEN}?{V}&{ARM}") for _ in range(60)]
            instance = client.get(f"{server.metadata_url}/metadata/instance?{V}")
        throttled = [r for r in codes if r.status_code == 429]
        assert 20 <= sum(r.status_code == 200 for r in codes) < 60
        assert throttled
        assert throttled[0].json()["error"] == "too_many_requests"
        assert instance.status_code == 200
    finally:
        server.stop()

"""OIDC discovery is public for every tenant path: a relying party sends no admin token,
so an unknown tenant is a 404 (not a 401), and a tenant id in upper case is the same
tenant (GUIDs compare without case)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support.server import RunningServer

TENANT = json.loads(
    (Path(__file__).parents[2] / "src" / "openimds" / "data" / "demo-vm.json").read_text()
)["identities"]["tenantId"]
DISCOVERY = "/.well-known/openid-configuration"


def test_unknown_tenant_is_a_public_404(live: RunningServer) -> None:
    response = httpx.get(f"{live.admin_url}/00000000-0000-0000-0000-000000000001{DISCOVERY}")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "error_description": "unknown tenant"}


def test_upper_case_tenant_is_the_known_tenant(live: RunningServer) -> None:
    response = httpx.get(f"{live.admin_url}/{TENANT.upper()}{DISCOVERY}")
    assert response.status_code == 200
    assert response.json()["issuer"] == f"https://sts.windows.net/{TENANT.lower()}/"
    assert response.json()["jwks_uri"] == f"{live.admin_url}/discovery/keys"

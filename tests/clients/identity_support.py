"""What the managed-identity client tests share: the demo VM's identities, a clean
environment that leaves the SDKs only the IMDS path, and the server's own answer."""

from __future__ import annotations

import jwt
import pytest

from tests.support.server import RunningServer

UNKNOWN_CLIENT_ID = "00000000-1111-2222-3333-444444444444"
SCOPE = "https://management.azure.com/.default"
RESOURCE = "https://management.azure.com"  # the SDKs strip "/.default"
# The token endpoint throttles at 20 requests/s per VM; these tests stay well under it
# but turn it off so a slow machine cannot make them flaky.
SERVER_ENV = {"OPENIMDS_IDENTITY_RATE_LIMIT": "0"}

# Variables that switch the SDKs to App Service, Service Fabric, Arc, Azure ML, Cloud
# Shell, workload identity or a service principal: none may be set.
OTHER_FLAVOURS = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_TOKEN_CREDENTIALS",
)


def point_sdks_at(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTHER_FLAVOURS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", server.metadata_url)
    # Proxies must never see loopback traffic (and IMDS must never be proxied, 5).
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def issued(server: RunningServer, selector: str = "") -> str:
    """The token the server holds in its cache for this identity and resource."""
    query = f"api-version=2018-02-01&resource={RESOURCE}" + (f"&{selector}" if selector else "")
    response = server.get(f"/metadata/identity/oauth2/token?{query}")
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def claims(token: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return decoded

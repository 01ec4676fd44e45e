"""azure-identity, unchanged, against the real server: ManagedIdentityCredential (sync and
asyncio, system- and user-assigned) and DefaultAzureCredential get the token openimds
issued; an unknown identity fails fast with the SDK's "unavailable" error."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    CredentialUnavailableError,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential

from tests.clients.identity_support import (
    RESOURCE,
    SCOPE,
    SERVER_ENV,
    UNKNOWN_CLIENT_ID,
    claims,
    issued,
    point_sdks_at,
)
from tests.support.identity import SYSTEM, USER
from tests.support.server import RunningServer, server_fixture

pytestmark = pytest.mark.clients

USER_SELECTORS = [
    pytest.param({"client_id": USER["clientId"]}, id="client_id"),
    pytest.param({"identity_config": {"object_id": USER["objectId"]}}, id="object_id"),
    pytest.param({"identity_config": {"resource_id": USER["resourceId"]}}, id="resource_id"),
]


server = server_fixture("server", env=SERVER_ENV)


@pytest.fixture(autouse=True)
def imds_env(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    point_sdks_at(server, monkeypatch)


def test_sync_system_assigned(server: RunningServer) -> None:
    token = ManagedIdentityCredential().get_token(SCOPE)
    assert token.token == issued(server)
    assert token.expires_on > time.time() + 3600
    c = claims(token.token)
    assert (c["aud"], c["oid"], c["appid"]) == (RESOURCE, SYSTEM["objectId"], SYSTEM["clientId"])


@pytest.mark.parametrize("kwargs", USER_SELECTORS)
def test_sync_user_assigned(server: RunningServer, kwargs: dict[str, Any]) -> None:
    token = ManagedIdentityCredential(**kwargs).get_token(SCOPE)
    assert token.token == issued(server, f"client_id={USER['clientId']}")
    assert claims(token.token)["oid"] == USER["objectId"]
    assert token.expires_on > time.time() + 3600


async def _async_token(**kwargs: Any) -> tuple[str, int]:
    async with AsyncManagedIdentityCredential(**kwargs) as credential:
        token = await credential.get_token(SCOPE)
    return token.token, token.expires_on


def test_async_system_assigned(server: RunningServer) -> None:
    token, expires_on = asyncio.run(_async_token())
    assert token == issued(server)
    assert expires_on > time.time() + 3600


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"client_id": USER["clientId"]}, id="client_id"),
        pytest.param({"identity_config": {"object_id": USER["objectId"]}}, id="object_id"),
        # The asyncio client passes identity_config to IMDS verbatim, so it takes IMDS's
        # own parameter name for a resource id.
        pytest.param({"identity_config": {"msi_res_id": USER["resourceId"]}}, id="msi_res_id"),
    ],
)
def test_async_user_assigned(server: RunningServer, kwargs: dict[str, object]) -> None:
    token, expires_on = asyncio.run(_async_token(**kwargs))
    assert token == issued(server, f"client_id={USER['clientId']}")
    assert claims(token)["oid"] == USER["objectId"]
    assert expires_on > time.time() + 3600


def _default_credential(**kwargs: object) -> DefaultAzureCredential:
    """Only the managed-identity path may run: everything that could reach outside or
    read this machine's logins is excluded."""
    return DefaultAzureCredential(
        exclude_environment_credential=True,
        exclude_workload_identity_credential=True,
        exclude_shared_token_cache_credential=True,
        exclude_visual_studio_code_credential=True,
        exclude_cli_credential=True,
        exclude_developer_cli_credential=True,
        exclude_powershell_credential=True,
        exclude_interactive_browser_credential=True,
        exclude_broker_credential=True,
        **kwargs,
    )


def test_default_azure_credential_system_assigned(server: RunningServer) -> None:
    token = _default_credential().get_token(SCOPE)
    assert token.token == issued(server)
    assert token.expires_on > time.time() + 3600


def test_default_azure_credential_user_assigned(server: RunningServer) -> None:
    credential = _default_credential(managed_identity_client_id=USER["clientId"])
    token = credential.get_token(SCOPE)
    assert token.token == issued(server, f"client_id={USER['clientId']}")


def test_sync_unknown_identity_fails_fast() -> None:
    started = time.monotonic()
    with pytest.raises(CredentialUnavailableError):
        ManagedIdentityCredential(client_id=UNKNOWN_CLIENT_ID).get_token(SCOPE)
    assert time.monotonic() - started < 5


def test_async_unknown_identity_fails_fast() -> None:
    started = time.monotonic()
    with pytest.raises(CredentialUnavailableError):
        asyncio.run(_async_token(client_id=UNKNOWN_CLIENT_ID))
    assert time.monotonic() - started < 5


def test_default_azure_credential_unknown_identity_fails_fast() -> None:
    started = time.monotonic()
    credential = _default_credential(managed_identity_client_id=UNKNOWN_CLIENT_ID)
    with pytest.raises(ClientAuthenticationError):
        credential.get_token(SCOPE)
    assert time.monotonic() - started < 5

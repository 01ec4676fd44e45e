"""Every managed-identity source, driven by the real clients, unchanged: azure-identity's
ManagedIdentityCredential (sync and asyncio) and msal's ManagedIdentityClient, configured
only by what `openimds env --host <source>` prints. Each gets the token the VM endpoint
issues for the same identity (one issuer, one cache), and it validates against the JWKS.

Where a client cannot use a source, the test says so instead of passing:
- appservice-legacy: MSI_ENDPOINT + MSI_SECRET make every client pick Azure ML; only the
  asyncio credential parses 2017-09-01's date-form expires_on (msal calls int() on it).
- Cloud Shell: msal's ManagedIdentityClient has no Cloud Shell source (it falls back to
  the VM endpoint), and no client selects an identity there.
- Service Fabric: the cluster chooses the identity; clients refuse or ignore a selector.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import msal
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ManagedIdentityCredential
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential

from tests.clients.identity_support import RESOURCE, SCOPE, issued
from tests.support.identity import SYSTEM, USER
from tests.support.server import RunningServer
from tests.support.sources import apply_env, env_of, run_all_sources, validated

pytestmark = [pytest.mark.clients, pytest.mark.root]

CHOICES = ("vm", "arc", "appservice", "appservice-legacy", "azureml", "cloudshell", "servicefabric")
# Sources the sync credential and msal can use (see the module docstring for the legacy
# form, which `test_legacy_app_service_*` below pins down).
PARSES_DATES = tuple(c for c in CHOICES if c != "appservice-legacy")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from run_all_sources(tmp_path_factory.mktemp("sources"))


@pytest.fixture(scope="module")
def envs(server: RunningServer) -> dict[str, dict[str, str]]:
    return {choice: env_of(server, choice) for choice in CHOICES}


def use(choice: str, envs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    apply_env(envs[choice], monkeypatch)


def check(server: RunningServer, token: str, identity: dict[str, str], selector: str) -> None:
    claims = validated(server, token)
    assert (claims["oid"], claims["appid"]) == (identity["objectId"], identity["clientId"])
    assert token == issued(server, selector)  # the VM endpoint's cached token: one cache


async def _async_token(**kwargs: object) -> str:
    async with AsyncManagedIdentityCredential(**kwargs) as credential:  # type: ignore[arg-type]
        token: str = (await credential.get_token(SCOPE)).token
        return token


def _msal_token(identity: msal.ManagedIdentity) -> dict[str, object]:
    with requests.Session() as http:
        client = msal.ManagedIdentityClient(identity, http_client=http)
        result: dict[str, object] = client.acquire_token_for_client(resource=RESOURCE)
    return result


# -- system-assigned (the default identity) ------------------------------------------------


@pytest.mark.parametrize("choice", PARSES_DATES)
def test_sync_system_assigned(
    server: RunningServer, envs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch,
    choice: str,
) -> None:  # fmt: skip
    use(choice, envs, monkeypatch)
    with ManagedIdentityCredential() as credential:
        check(server, credential.get_token(SCOPE).token, SYSTEM, "")


@pytest.mark.parametrize("choice", CHOICES)
def test_async_system_assigned(
    server: RunningServer, envs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch,
    choice: str,
) -> None:  # fmt: skip
    use(choice, envs, monkeypatch)
    check(server, asyncio.run(_async_token()), SYSTEM, "")


MSAL_CHOICES = tuple(c for c in PARSES_DATES if c != "cloudshell")


@pytest.mark.parametrize("choice", MSAL_CHOICES)
def test_msal_system_assigned(
    server: RunningServer, envs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch,
    choice: str,
) -> None:  # fmt: skip
    use(choice, envs, monkeypatch)
    result = _msal_token(msal.SystemAssignedManagedIdentity())
    assert result.get("token_type") == "Bearer", result
    assert 3600 < int(str(result["expires_in"])) <= 86400
    check(server, str(result["access_token"]), SYSTEM, "")


# -- user-assigned --------------------------------------------------------------------------

USER_CHOICES = ("vm", "arc", "appservice", "appservice-legacy", "azureml")
USER_PARSES_DATES = tuple(c for c in USER_CHOICES if c in PARSES_DATES)
BY_CLIENT_ID = f"client_id={USER['clientId']}"


@pytest.mark.parametrize("choice", USER_PARSES_DATES)
def test_sync_user_assigned(
    server: RunningServer, envs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch,
    choice: str,
) -> None:  # fmt: skip
    use(choice, envs, monkeypatch)
    with ManagedIdentityCredential(client_id=USER["clientId"]) as credential:
        check(server, credential.get_token(SCOPE).token, USER, BY_CLIENT_ID)


@pytest.mark.parametrize("choice", USER_CHOICES)
def test_async_user_assigned(
    server: RunningServer, envs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch,
    choice: str,
) -> None:  # fmt: skip
    use(choice, envs, monkeypatch)
    check(server, asyncio.run(_async_token(client_id=USER["clientId"])), USER, BY_CLIENT_ID)


@pytest.mark.parametrize("choice", USER_PARSES_DATES)
def test_msal_user_assigned(
    server: RunningServer, envs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch,
    choice: str,
) -> None:  # fmt: skip
    use(choice, envs, monkeypatch)
    result = _msal_token(msal.UserAssignedManagedIdentity(client_id=USER["clientId"]))
    check(server, str(result["access_token"]), USER, BY_CLIENT_ID)


# -- the 2017-09-01 App Service form: only the asyncio credential reads it ---------------------


def test_legacy_app_service_is_read_as_azure_ml_by_the_sync_credential(
    server: RunningServer, envs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """MSI_ENDPOINT + MSI_SECRET select Azure ML, whose parser takes `expires_on` as
    epoch seconds: the legacy date form (what Linux Consumption plans send) fails there.
    The asyncio credential's tests above show the same answer is a valid token."""
    use("appservice-legacy", envs, monkeypatch)
    with ManagedIdentityCredential() as credential, pytest.raises(ValueError, match="int"):
        credential.get_token(SCOPE)


def test_legacy_app_service_is_read_as_azure_ml_by_msal(
    server: RunningServer, envs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    use("appservice-legacy", envs, monkeypatch)
    with pytest.raises(ValueError, match="int"):
        _msal_token(msal.SystemAssignedManagedIdentity())


ARC_SELECTORS = [
    pytest.param({"identity_config": {"object_id": USER["objectId"]}}, id="object_id"),
    pytest.param({"identity_config": {"resource_id": USER["resourceId"]}}, id="resource_id"),
]


@pytest.mark.parametrize("kwargs", ARC_SELECTORS)
def test_arc_user_assigned_by_object_and_resource_id(
    server: RunningServer, envs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, object],
) -> None:  # fmt: skip
    """Both clients check that Arc echoes the identity they asked for."""
    use("arc", envs, monkeypatch)
    with ManagedIdentityCredential(**kwargs) as credential:  # type: ignore[arg-type]
        check(server, credential.get_token(SCOPE).token, USER, BY_CLIENT_ID)
    check(server, asyncio.run(_async_token(**kwargs)), USER, BY_CLIENT_ID)


def test_app_service_user_assigned_by_object_and_resource_id(
    server: RunningServer, envs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    use("appservice", envs, monkeypatch)
    for identity in (
        msal.UserAssignedManagedIdentity(object_id=USER["objectId"]),
        msal.UserAssignedManagedIdentity(resource_id=USER["resourceId"]),  # sent as mi_res_id
    ):
        check(server, str(_msal_token(identity)["access_token"]), USER, BY_CLIENT_ID)
    # The asyncio client passes identity_config as it is: App Service's own names.
    token = asyncio.run(_async_token(identity_config={"mi_res_id": USER["resourceId"]}))
    check(server, token, USER, BY_CLIENT_ID)


# -- refusals -------------------------------------------------------------------------------

UNKNOWN = "00000000-1111-2222-3333-444444444444"


def test_arc_unknown_identity_is_refused_by_both_clients(
    envs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    use("arc", envs, monkeypatch)
    result = _msal_token(msal.UserAssignedManagedIdentity(client_id=UNKNOWN))
    assert "access_token" not in result
    assert "identity_not_found" in str(result["error_description"])
    with pytest.raises(ClientAuthenticationError):
        asyncio.run(_async_token(client_id=UNKNOWN))


@pytest.mark.parametrize(
    ("choice", "secret"),
    [
        ("appservice", "IDENTITY_HEADER"),
        ("appservice-legacy", "MSI_SECRET"),
        ("azureml", "MSI_SECRET"),
        ("servicefabric", "IDENTITY_HEADER"),
    ],
)
@pytest.mark.parametrize("wrong", ["other", "near-miss"])
def test_a_wrong_secret_gets_no_token(
    envs: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch,
    choice: str, secret: str, wrong: str,
) -> None:  # fmt: skip
    """(A missing secret makes the clients pick another source: the HTTP tests cover it.)"""
    right = envs[choice][secret]
    value = "0123456789abcdef0123456789abcdef" if wrong == "other" else right[:-1] + "x"
    apply_env({**envs[choice], secret: value}, monkeypatch)
    result = _msal_token(msal.SystemAssignedManagedIdentity())
    assert "access_token" not in result
    with pytest.raises(ClientAuthenticationError):
        asyncio.run(_async_token())
    with pytest.raises(ClientAuthenticationError), ManagedIdentityCredential() as credential:
        credential.get_token(SCOPE)

"""msal's ManagedIdentityClient, unchanged, against the real server: system- and
user-assigned tokens are the ones openimds issued, and msal's own cache works with them
(it needs expires_in > 300, 13); an unknown identity comes back as msal's error dict, fast."""

from __future__ import annotations

import time
from collections.abc import Iterator

import msal
import pytest
import requests

from tests.clients.identity_support import (
    RESOURCE,
    SERVER_ENV,
    UNKNOWN_CLIENT_ID,
    claims,
    issued,
    point_sdks_at,
)
from tests.support.identity import SYSTEM, USER
from tests.support.server import RunningServer, server_fixture

pytestmark = pytest.mark.clients


server = server_fixture("server", env=SERVER_ENV)


@pytest.fixture
def http(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[requests.Session]:
    point_sdks_at(server, monkeypatch)
    with requests.Session() as session:
        yield session


def test_system_assigned(server: RunningServer, http: requests.Session) -> None:
    client = msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=http)
    result = client.acquire_token_for_client(resource=RESOURCE)
    assert result["access_token"] == issued(server)
    assert result["token_type"] == "Bearer"
    assert 3600 < result["expires_in"] <= 86400
    assert result["token_source"] == "identity_provider"
    assert claims(result["access_token"])["appid"] == SYSTEM["clientId"]
    again = client.acquire_token_for_client(resource=RESOURCE)
    assert again["token_source"] == "cache"  # msal kept it: expires_in is well over 300 s
    assert again["access_token"] == result["access_token"]


@pytest.mark.parametrize(
    "identity",
    [
        pytest.param(msal.UserAssignedManagedIdentity(client_id=USER["clientId"]), id="client_id"),
        pytest.param(msal.UserAssignedManagedIdentity(object_id=USER["objectId"]), id="object_id"),
        pytest.param(
            msal.UserAssignedManagedIdentity(resource_id=USER["resourceId"]), id="resource_id"
        ),
    ],
)
def test_user_assigned(
    server: RunningServer, http: requests.Session, identity: msal.ManagedIdentity
) -> None:
    client = msal.ManagedIdentityClient(identity, http_client=http)
    result = client.acquire_token_for_client(resource=RESOURCE)
    assert result["access_token"] == issued(server, f"client_id={USER['clientId']}")
    assert claims(result["access_token"])["oid"] == USER["objectId"]
    assert result["expires_in"] > 3600


def test_unknown_identity_fails_fast(http: requests.Session) -> None:
    identity = msal.UserAssignedManagedIdentity(client_id=UNKNOWN_CLIENT_ID)
    client = msal.ManagedIdentityClient(identity, http_client=http)
    started = time.monotonic()
    result = client.acquire_token_for_client(resource=RESOURCE)
    assert time.monotonic() - started < 5
    assert "access_token" not in result
    assert result["error"] == "invalid_request"
    assert result["error_description"] == "Identity not found"

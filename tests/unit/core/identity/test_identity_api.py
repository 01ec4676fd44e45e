"""The managed-identity endpoints, pure: selection rules, bodies, errors, cache."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openimds.core.app import build_dispatcher
from openimds.core.dispatch import Dispatcher
from openimds.core.errors import TooManyRequests
from openimds.core.http import Request, Response
from openimds.core.identity.identity_api import (
    IdentityInfoEndpoint,
    TokenEndpoint,
    VmIdentities,
)
from openimds.core.identity.tokens import ManagedIdentity, TokenCache, TokenPolicy
from openimds.core.vm import VmSnapshot
from tests.support.identity import MALFORMED, NOT_FOUND
from tests.support.imds import bare_vm

TENANT = "11111111-2222-3333-4444-555555555555"
_RG = "/subscriptions/s/resourceGroups/rg/providers"
SYSTEM = ManagedIdentity(
    "aaaaaaaa-0000-0000-0000-000000000001",
    "bbbbbbbb-0000-0000-0000-000000000001",
    f"{_RG}/Microsoft.Compute/virtualMachines/vm",
    True,
)
USER1 = ManagedIdentity(
    "aaaaaaaa-0000-0000-0000-000000000002",
    "bbbbbbbb-0000-0000-0000-000000000002",
    f"{_RG}/Microsoft.ManagedIdentity/userAssignedIdentities/one",
)
USER2 = ManagedIdentity(
    "aaaaaaaa-0000-0000-0000-000000000003",
    "bbbbbbbb-0000-0000-0000-000000000003",
    f"{_RG}/Microsoft.ManagedIdentity/userAssignedIdentities/two",
)
MULTIPLE = {
    "error": "invalid_request",
    "error_description": "Multiple user assigned identities exist, please specify the clientId "
    "/ resourceId of the identity in the token request",
}
NOW = 1_800_000_000.0
RESOURCE = "https://management.azure.com/"


class FakeSigner:
    """Records what it signs; the token is the claims as JSON, so tests can read them."""

    def __init__(self) -> None:
        self.signed: list[dict[str, object]] = []

    def sign(self, claims: Mapping[str, object]) -> str:
        self.signed.append(dict(claims))
        return "jwt." + json.dumps(dict(claims), sort_keys=True)


class Directory:
    def __init__(self, identities: VmIdentities | None) -> None:
        self.value = identities

    def identities(self, vm: VmSnapshot) -> VmIdentities | None:
        return self.value


class World:
    def __init__(self, identities: VmIdentities | None, lifetime: int = 86400) -> None:
        self.signer = FakeSigner()
        self.cache = TokenCache()
        self.directory = Directory(identities)
        self.counter = 0
        policy = TokenPolicy(lifetime, "https://sts.windows.net/{tenant}/")
        token = TokenEndpoint(self.directory, self.signer, self.cache, policy, self._uti)
        self.issuer = token.issuer
        self.dispatcher: Dispatcher = build_dispatcher(
            [
                ("/metadata/identity/oauth2/token", token),
                ("/metadata/identity/info", IdentityInfoEndpoint(self.directory)),
            ]
        )
        self.vm = bare_vm("vm")

    def _uti(self) -> str:
        self.counter += 1
        return f"uti-{self.counter}"

    def get(
        self, params: Mapping[str, str | None] | None = None, *, now: float = NOW,
        header: bool = True,
        path: str = "/metadata/identity/oauth2/token",
    ) -> Response:  # fmt: skip
        given = {"api-version": "2018-02-01", "resource": RESOURCE, **(params or {})}
        query = {k: v for k, v in given.items() if v is not None}
        headers = (("metadata", "true"),) if header else ()
        request = Request("GET", path, tuple(query.items()), headers)
        return self.dispatcher.handle(request, self.vm, now)


def body(response: Response) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(response.body)
    return decoded


def token_claims(response: Response) -> dict[str, object]:
    token = str(body(response)["access_token"])
    decoded: dict[str, object] = json.loads(token.removeprefix("jwt."))
    return decoded


def full() -> VmIdentities:
    return VmIdentities(TENANT, SYSTEM, (USER1, USER2))


# -- success --------------------------------------------------------------------------


def test_success_body_is_azures_shape_all_strings() -> None:
    r = World(full()).get()
    assert r.status == 200
    assert r.content_type == "application/json; charset=utf-8"
    # The countdown is in whole seconds: the bytes hold until the next second, no longer.
    assert r.cacheable is True and r.valid_until == int(NOW) + 1
    b = body(r)
    assert list(b) == [
        "access_token", "refresh_token", "expires_in", "expires_on", "ext_expires_in",
        "not_before", "resource", "token_type", "client_id",
    ]  # fmt: skip
    assert all(isinstance(v, str) for v in b.values())
    assert b["refresh_token"] == ""
    assert b["token_type"] == "Bearer"
    assert b["resource"] == RESOURCE
    assert b["client_id"] == SYSTEM.client_id
    assert b["expires_in"] == "86400"
    assert b["ext_expires_in"] == "86400"
    assert b["expires_on"] == str(int(NOW) + 86400)
    assert b["not_before"] == str(int(NOW) - 300)


def test_claims_of_a_managed_identity_token() -> None:
    c = token_claims(World(full()).get({"client_id": USER1.client_id}))
    assert c == {
        "aud": RESOURCE,
        "iss": f"https://sts.windows.net/{TENANT}/",
        "iat": int(NOW) - 300,
        "nbf": int(NOW) - 300,
        "exp": int(NOW) + 86400,
        "appid": USER1.client_id,
        "appidacr": "2",
        "idp": f"https://sts.windows.net/{TENANT}/",
        "idtyp": "app",
        "oid": USER1.object_id,
        "sub": USER1.object_id,
        "tid": TENANT,
        "uti": "uti-1",
        "ver": "1.0",
        "xms_mirid": USER1.resource_id,
    }


def test_the_issuers_claims_are_a_minted_tokens_without_signing_or_caching() -> None:
    world = World(full())
    shown = world.issuer.claims(USER1, TENANT, RESOURCE, NOW)
    assert world.signer.signed == [] and len(world.cache) == 0
    minted = token_claims(world.get({"client_id": USER1.client_id}))
    assert shown == {**minted, "uti": "uti-1"} and minted["uti"] == "uti-2"  # an id of its own


def test_system_assigned_token_names_the_vm() -> None:
    c = token_claims(World(full()).get())
    assert c["oid"] == SYSTEM.object_id
    assert c["xms_mirid"] == SYSTEM.resource_id


@pytest.mark.parametrize("version", ["2018-02-01", "2019-08-15", "2025-04-07"])
def test_every_general_version_from_2018_02_01(version: str) -> None:
    assert World(full()).get({"api-version": version}).status == 200


# -- selection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("client_id", USER1.client_id, USER1),
        ("client_id", USER2.client_id.upper(), USER2),
        ("object_id", USER2.object_id, USER2),
        ("msi_res_id", USER1.resource_id, USER1),
        ("mi_res_id", USER2.resource_id.lower(), USER2),  # the older name
        ("client_id", SYSTEM.client_id, SYSTEM),
        ("msi_res_id", SYSTEM.resource_id, SYSTEM),
    ],
)
def test_selectors(param: str, value: str, expected: ManagedIdentity) -> None:
    r = World(full()).get({param: value})
    assert r.status == 200
    assert body(r)["client_id"] == expected.client_id
    assert token_claims(r)["oid"] == expected.object_id


def test_echoes_object_id_and_msi_res_id() -> None:
    world = World(full())
    assert body(world.get({"object_id": USER1.object_id}))["object_id"] == USER1.object_id
    b = body(world.get({"msi_res_id": USER1.resource_id}))
    assert b["msi_res_id"] == USER1.resource_id
    older = body(world.get({"mi_res_id": USER1.resource_id}))
    assert older["msi_res_id"] == USER1.resource_id and "mi_res_id" not in older
    assert "object_id" not in body(world.get({"client_id": USER1.client_id}))


def test_no_selector_uses_system_assigned() -> None:
    assert body(World(full()).get())["client_id"] == SYSTEM.client_id


def test_no_selector_and_one_user_assigned_uses_it() -> None:
    r = World(VmIdentities(TENANT, None, (USER1,))).get()
    assert body(r)["client_id"] == USER1.client_id


def test_no_selector_and_several_user_assigned() -> None:
    r = World(VmIdentities(TENANT, None, (USER1, USER2))).get()
    assert (r.status, body(r)) == (400, MULTIPLE)


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "00000000-0000-0000-0000-000000000000"},
        {"object_id": USER1.client_id},  # a client id is not an object id
        {"msi_res_id": "/subscriptions/s/nope"},
    ],
)
def test_unknown_identity(params: dict[str, str]) -> None:
    r = World(full()).get(params)
    assert (r.status, body(r)) == (400, NOT_FOUND)


@pytest.mark.parametrize("identities", [None, VmIdentities(TENANT)])
def test_vm_without_identity(identities: VmIdentities | None) -> None:
    r = World(identities).get()
    assert (r.status, body(r)) == (400, NOT_FOUND)


# -- malformed requests -------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"resource": None},
        {"resource": ""},
        {"client_id": USER1.client_id, "object_id": USER1.object_id},
        {"client_id": USER1.client_id, "msi_res_id": USER1.resource_id},
        {"msi_res_id": USER1.resource_id, "mi_res_id": USER1.resource_id},
        {"client_id": ""},
        {"bypass_cache": "false"},
        {"bypass_cache": "True"},
        {"api-version": None},
        {"api-version": "2017-12-01"},
        {"api-version": "latest"},
        {"api-version": "2018-02-02"},
        {"format": "text"},
        {"format": "xml"},
    ],
)
def test_malformed_requests(params: dict[str, str | None]) -> None:
    r = World(full()).get(params)
    assert (r.status, body(r)) == (400, MALFORMED)


@pytest.mark.parametrize("path", ["/metadata/identity/oauth2/token", "/metadata/identity/info"])
def test_duplicate_parameter_in_identity_shape(path: str) -> None:
    # 7 (MI): a parameter given more than once is an invalid_request, not the generic body.
    query = (("api-version", "2018-02-01"), ("resource", RESOURCE), ("resource", RESOURCE))
    request = Request("GET", path, query, (("metadata", "true"),))
    r = World(full()).dispatcher.handle(request, World(full()).vm, NOW)
    assert (r.status, body(r)) == (400, MALFORMED)


def test_format_json_is_accepted_on_identity() -> None:
    r = World(full()).get({"format": "json"})
    assert r.status == 200
    r = World(full()).get({"format": "text"}, path="/metadata/identity/info")
    assert (r.status, body(r)) == (400, MALFORMED)


def test_missing_metadata_header() -> None:
    r = World(full()).get(header=False)
    assert r.status == 400
    assert body(r) == {
        "error": "bad_request_102",
        "error_description": "Required metadata header not specified",
    }


def test_throttled_answer_in_identity_shape() -> None:
    endpoint = World(full()).dispatcher.route(Request("GET", "/metadata/identity/oauth2/token"))
    assert endpoint is not None and endpoint.name == "identity"
    error = endpoint.own_error(TooManyRequests())
    assert error.status == 429
    assert error.payload()["error"] == "too_many_requests"


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "api-version",
                "resource",
                "client_id",
                "object_id",
                "msi_res_id",
                "mi_res_id",
                "bypass_cache",
                "authority",
                "x",
            ]
        ),
        st.one_of(st.sampled_from(["", "true", "2018-02-01", USER1.client_id]), st.text()),
    )
)
def test_bad_input_is_never_retried_status(params: dict[str, str]) -> None:
    """Clients retry 404/410/429/5xx and would hang: anything else is 200 or 400."""
    r = World(full()).get(params)
    assert r.status in (200, 400)


# -- cache ---------------------------------------------------------------------------------


def test_cached_token_is_reused_and_counts_down_without_signing() -> None:
    world = World(full())
    first = body(world.get())
    later = body(world.get(now=NOW + 1000))
    assert later["access_token"] == first["access_token"]
    assert later["expires_on"] == first["expires_on"]
    assert later["expires_in"] == str(86400 - 1000)
    assert len(world.signer.signed) == 1


def test_cache_is_per_identity_and_resource() -> None:
    world = World(full())
    a = body(world.get())["access_token"]
    b = body(world.get({"client_id": USER1.client_id}))["access_token"]
    c = body(world.get({"resource": "https://vault.azure.net"}))["access_token"]
    assert len({a, b, c}) == 3
    assert body(world.get({"client_id": SYSTEM.client_id}))["access_token"] == a
    assert len(world.signer.signed) == 3


def test_bypass_cache_mints_a_new_token_and_caches_it() -> None:
    world = World(full())
    old = body(world.get())["access_token"]
    new = body(world.get({"bypass_cache": "true"}, now=NOW + 5))["access_token"]
    assert new != old
    assert body(world.get(now=NOW + 6))["access_token"] == new


def test_token_near_expiry_is_replaced() -> None:
    world = World(full(), lifetime=3600)
    first = body(world.get())
    # 3600 s lifetime: replaced once under 360 s (max(360, lifetime/10)) remain.
    assert body(world.get(now=NOW + 3600 - 361))["access_token"] == first["access_token"]
    renewed = body(world.get(now=NOW + 3600 - 359))
    assert renewed["access_token"] != first["access_token"]
    assert int(str(renewed["expires_in"])) == 3600


def test_cache_is_bounded() -> None:
    cache = TokenCache(limit=8)
    world = World(full())
    endpoint = world.dispatcher.route(Request("GET", "/metadata/identity/oauth2/token"))
    assert isinstance(endpoint, TokenEndpoint)
    endpoint.issuer = dataclasses.replace(endpoint.issuer, cache=cache)
    for i in range(50):
        assert world.get({"resource": f"https://r{i}"}).status == 200
        assert len(cache) <= 8


# -- info ----------------------------------------------------------------------------------


def test_info_returns_the_tenant() -> None:
    r = World(full()).get(path="/metadata/identity/info", params={"resource": None})
    assert (r.status, body(r)) == (200, {"tenantId": TENANT})
    assert r.cacheable is True


def test_info_errors_in_identity_shape() -> None:
    world = World(None)
    r = world.get(path="/metadata/identity/info")
    assert (r.status, body(r)) == (400, NOT_FOUND)
    r = World(full()).get({"api-version": "2017-04-02"}, path="/metadata/identity/info")
    assert (r.status, body(r)) == (400, MALFORMED)
    r = World(full()).get(path="/metadata/identity/info", header=False)
    assert body(r)["error"] == "bad_request_102"


def test_selection_follows_a_new_vm_revision() -> None:
    world = World(VmIdentities(TENANT, SYSTEM))
    assert body(world.get())["client_id"] == SYSTEM.client_id
    world.directory.value = VmIdentities(TENANT, None, (USER1,))
    world.vm = bare_vm("vm", revision=2)
    assert body(world.get())["client_id"] == USER1.client_id


def test_byte_reuse_never_outlives_the_token_cache() -> None:
    # A token near its refresh point: the adapter may reuse the answer only until the core
    # would mint a new one, even if that comes before the next whole second.
    world = World(full(), lifetime=3600)
    first = world.get(now=NOW)
    expires_on = int(str(body(first)["expires_on"]))
    margin = TokenPolicy(3600, "x").refresh_margin
    late = NOW + (expires_on - NOW - margin) - 0.5
    r = world.get(now=late)
    assert r.cacheable is True
    assert r.valid_until == min(int(late) + 1, expires_on - margin)
    assert r.valid_until is not None and r.valid_until <= expires_on - margin


def test_bypass_cache_answers_are_never_reused_and_drop_older_ones() -> None:
    r = World(full()).get({"bypass_cache": "true"})
    assert r.status == 200 and r.cacheable is False and r.valid_until is None
    assert r.drops_cached is True  # cached answers still carry the replaced token


@pytest.mark.parametrize("path", ["/metadata/identity/oauth2/token", "/metadata/identity/info"])
def test_shared_rule_errors_come_in_the_identity_shape(path: str) -> None:
    world = World(full())
    query = (("api-version", "2018-02-01"), ("resource", RESOURCE))
    post = world.dispatcher.handle(
        Request("POST", path, query, (("metadata", "true"),)), world.vm, NOW
    )
    assert post.status == 405
    assert dict(post.headers)["Allow"] == "GET"
    assert body(post)["error"] == "method_not_allowed"
    proxied = world.dispatcher.handle(
        Request("GET", path, query, (("metadata", "true"), ("x-forwarded-for", "10.0.0.9"))),
        world.vm,
        NOW,
    )
    assert proxied.status == 400  # never a status the SDKs retry
    assert body(proxied) == MALFORMED

"""The token sources beside the VM endpoint, pure: each protocol's checks, selectors, body
and error shape, and one issuer (a token minted for one source is the one the others
hand out)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from openimds.core.dispatch import Dispatcher
from openimds.core.errors import TooManyRequests
from openimds.core.http import Request, Response
from openimds.core.identity.appservice_api import (
    AppServiceTokenEndpoint,
    AzureMlTokenEndpoint,
    legacy_expires_on,
)
from openimds.core.identity.arc_api import NOT_FOUND_BODY, ArcTokenEndpoint
from openimds.core.identity.cloudshell_api import CloudShellTokenEndpoint, form_resource
from openimds.core.identity.identity_api import VmIdentities
from openimds.core.identity.identity_hosts import secret_matches
from openimds.core.identity.platform_metadata_api import PlatformMetadataEndpoint
from openimds.core.identity.servicefabric_api import ServiceFabricTokenEndpoint
from openimds.core.identity.tokens import Issuer, ManagedIdentity, TokenCache, TokenPolicy
from openimds.core.vm import VmSnapshot
from tests.unit.core.identity.test_identity_api import (
    NOW,
    RESOURCE,
    SYSTEM,
    TENANT,
    USER1,
    USER2,
    Directory,
    FakeSigner,
)

SECRET = "s3cret-s3cret-s3cret"
VM = VmSnapshot(id="vm", name="vm", revision=1, instance={"compute": {"vmId": "vm-guid"}})
BOTH = VmIdentities(TENANT, SYSTEM, (USER1, USER2))


class FakeBook:
    """Challenges without files: the realm is a name, the secret its index."""

    def __init__(self) -> None:
        self.issued: list[str] = []
        self.redeemed: list[str] = []

    def issue(self) -> str:
        self.issued.append(f"secret-{len(self.issued)}")
        return f"/var/opt/azcmagent/tokens/{len(self.issued) - 1}.key"

    def redeem(self, secret: str) -> bool:
        if secret in self.issued and secret not in self.redeemed:
            self.redeemed.append(secret)
            return True
        return False


class Sources:
    def __init__(self, identities: VmIdentities | None = BOTH) -> None:
        self.directory = Directory(identities)
        policy = TokenPolicy(86400, "https://sts.windows.net/{tenant}/")
        self.issuer = Issuer(FakeSigner(), TokenCache(), policy, lambda: "uti")
        self.book = FakeBook()
        d, i = self.directory, self.issuer
        path = "/metadata/identity/oauth2/token"
        self.arc = Dispatcher([(path, ArcTokenEndpoint(d, i, self.book))])
        self.app = Dispatcher(
            [("/msi/token", AppServiceTokenEndpoint(d, i, SECRET))], metadata_header=False
        )
        self.ml = Dispatcher(
            [("/msi/token", AzureMlTokenEndpoint(d, i, SECRET))], metadata_header=False
        )
        self.shell = Dispatcher([("/oauth2/token", CloudShellTokenEndpoint(d, i))])
        self.fabric = Dispatcher(
            [(path, ServiceFabricTokenEndpoint(d, i, SECRET))], metadata_header=False
        )


def call(
    dispatcher: Dispatcher,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
    body: bytes = b"",
) -> Response:
    request = Request(
        method,
        path,
        tuple(query.items()),
        tuple((k.lower(), v) for k, v in (headers or {}).items()),
        body,
    )
    return dispatcher.handle(request, VM, NOW)


def parsed(response: Response) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(response.body)
    return decoded


def claims_of(response: Response) -> dict[str, object]:
    token = str(parsed(response)["access_token"])
    decoded: dict[str, object] = json.loads(token.removeprefix("jwt."))
    return decoded


# -- Arc -----------------------------------------------------------------------------------

ARC_PATH = "/metadata/identity/oauth2/token"
ARC_QUERY = {"api-version": "2020-06-01", "resource": RESOURCE}


def arc(world: Sources, query: Mapping[str, str] | None = None, **headers: str) -> Response:
    return call(
        world.arc, ARC_PATH, {**ARC_QUERY, **(query or {})}, {"Metadata": "true", **headers}
    )


def arc_answered(world: Sources, query: Mapping[str, str] | None = None) -> Response:
    first = arc(world, query)
    assert first.status == 401
    return arc(world, query, Authorization=f"Basic {world.book.issued[-1]}")


def test_arc_challenges_then_answers_once() -> None:
    world = Sources()
    first = arc(world)
    assert first.status == 401
    assert dict(first.headers)["WWW-Authenticate"] == "Basic realm=/var/opt/azcmagent/tokens/0.key"
    ok = arc(world, Authorization="Basic secret-0")
    assert ok.status == 200 and not ok.cacheable
    assert parsed(ok)["client_id"] == SYSTEM.client_id
    assert arc(world, Authorization="Basic secret-0").status == 401  # used
    assert arc(world, Authorization="basic  secret-1  ").status == 200  # any case, spaces


@pytest.mark.parametrize("authorization", ["Bearer secret-0", "secret-0", "Basic", "Basic x"])
def test_arc_refuses_other_authorization(authorization: str) -> None:
    world = Sources()
    arc(world)
    answer = arc(world, Authorization=authorization)
    assert answer.status == 401 and "access_token" not in parsed(answer)


def test_arc_needs_metadata_before_a_challenge() -> None:
    world = Sources()
    answer = call(world.arc, ARC_PATH, ARC_QUERY)
    assert (answer.status, parsed(answer)["error"]) == (400, "bad_request_102")
    assert world.book.issued == []


def test_arc_selectors_echo_and_mi_res_id_is_ignored() -> None:
    world = Sources()
    by_object = parsed(arc_answered(world, {"object_id": USER1.object_id.upper()}))
    assert by_object["client_id"] == USER1.client_id
    assert by_object["object_id"] == USER1.object_id.upper()  # echoed as asked
    by_res = parsed(arc_answered(world, {"msi_res_id": USER2.resource_id}))
    assert (by_res["client_id"], by_res["msi_res_id"]) == (USER2.client_id, USER2.resource_id)
    ignored = parsed(arc_answered(world, {"mi_res_id": USER2.resource_id}))
    assert ignored["client_id"] == SYSTEM.client_id and "msi_res_id" not in ignored


def test_arc_unknown_identity_and_bad_requests() -> None:
    world = Sources()
    missing = arc_answered(world, {"client_id": "00000000-0000-0000-0000-000000000000"})
    assert (missing.status, parsed(missing)) == (404, NOT_FOUND_BODY)
    no_resource = arc_answered(world, {"resource": ""})
    assert (no_resource.status, parsed(no_resource)["error"]) == (400, "invalid_request")
    assert arc_answered(world, {"api-version": "2017-01-01"}).status == 400


# -- App Service and Azure ML --------------------------------------------------------------


def app(world: Sources, version: str, header: str, value: str = SECRET, **query: str) -> Response:
    params = {"api-version": version, "resource": RESOURCE, **query}
    return call(world.app, "/msi/token", params, {header: value})


def test_app_service_2019() -> None:
    answer = app(Sources(), "2019-08-01", "X-IDENTITY-HEADER")
    body = parsed(answer)
    assert list(body) == ["access_token", "expires_on", "resource", "token_type", "client_id"]
    assert body["expires_on"] == str(int(NOW) + 86400) and body["client_id"] == SYSTEM.client_id


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("client_id", USER1.client_id, USER1),
        ("principal_id", USER1.object_id, USER1),
        ("object_id", USER2.object_id, USER2),
        ("mi_res_id", USER2.resource_id, USER2),
    ],
)
def test_app_service_2019_selectors(name: str, value: str, expected: ManagedIdentity) -> None:
    answer = app(Sources(), "2019-08-01", "X-IDENTITY-HEADER", **{name: value})
    assert parsed(answer)["client_id"] == expected.client_id


def test_app_service_2017() -> None:
    answer = app(Sources(), "2017-09-01", "secret", clientid=USER1.client_id)
    body = parsed(answer)
    assert list(body) == ["access_token", "expires_on", "resource", "token_type"]
    assert body["expires_on"] == legacy_expires_on(int(NOW) + 86400)
    assert claims_of(answer)["appid"] == USER1.client_id


def test_legacy_expires_on_is_the_linux_form() -> None:
    assert legacy_expires_on(1561001877) == "06/20/2019 03:37:57 +00:00"


@pytest.mark.parametrize(
    ("version", "header", "value"),
    [
        ("2019-08-01", "X-IDENTITY-HEADER", "wrong"),
        ("2019-08-01", "secret", SECRET),
        ("2017-09-01", "X-IDENTITY-HEADER", SECRET),
        ("2017-09-01", "secret", SECRET + "x"),
        ("2019-08-01", "X-IDENTITY-HEADER", ""),
    ],
)
def test_app_service_secret(version: str, header: str, value: str) -> None:
    answer = app(Sources(), version, header, value)
    assert answer.status == 401 and parsed(answer)["statusCode"] == 401


def test_app_service_errors_in_its_shape() -> None:
    world = Sources()
    assert parsed(app(world, "2018-02-01", "secret"))["statusCode"] == 400
    unknown = app(world, "2019-08-01", "X-IDENTITY-HEADER", client_id="nope")
    assert (unknown.status, parsed(unknown)["statusCode"]) == (400, 400)
    post = call(world.app, "/msi/token", {}, method="POST")
    assert post.status == 405 and dict(post.headers)["Allow"] == "GET"
    assert set(parsed(post)) == {"statusCode", "message"}
    endpoint = world.app.endpoints[0]
    assert endpoint.own_error(TooManyRequests()).status == 429


def test_azure_ml() -> None:
    world = Sources()
    params = {"api-version": "2017-09-01", "resource": RESOURCE}
    answer = call(
        world.ml, "/msi/token", {**params, "clientid": USER2.client_id}, {"secret": SECRET}
    )
    body = parsed(answer)
    assert body["expires_on"] == int(NOW) + 86400 and body["client_id"] == USER2.client_id
    by_res = call(
        world.ml, "/msi/token", {**params, "msi_res_id": USER1.resource_id}, {"secret": SECRET}
    )
    assert parsed(by_res)["client_id"] == USER1.client_id
    assert call(world.ml, "/msi/token", params, {"secret": "x"}).status == 401
    modern = {**params, "api-version": "2019-08-01"}
    assert call(world.ml, "/msi/token", modern, {"secret": SECRET}).status == 400


# -- Cloud Shell ---------------------------------------------------------------------------


def test_cloud_shell_form_post() -> None:
    world = Sources(VmIdentities(TENANT, None, (USER1,)))
    form = b"resource=https%3A%2F%2Fmanagement.azure.com%2F"
    answer = call(world.shell, "/oauth2/token", {}, {"Metadata": "true"}, "POST", form)
    assert answer.status == 200
    assert parsed(answer)["client_id"] == USER1.client_id  # the only identity
    assert int(str(parsed(answer)["expires_in"])) == 86400


@pytest.mark.parametrize(
    ("method", "headers", "body", "status", "code"),
    [
        ("GET", {"Metadata": "true"}, b"", 405, "MethodNotAllowed"),
        ("POST", {}, b"resource=x", 400, "BadRequest"),
        ("POST", {"Metadata": "true"}, b"", 400, "BadRequest"),
        ("POST", {"Metadata": "true"}, b"resource=\xff", 400, "BadRequest"),
    ],
)
def test_cloud_shell_errors(
    method: str, headers: dict[str, str], body: bytes, status: int, code: str
) -> None:
    answer = call(Sources().shell, "/oauth2/token", {}, headers, method, body)
    error = parsed(answer)["error"]
    assert answer.status == status and isinstance(error, dict) and error["code"] == code


def test_form_resource() -> None:
    assert form_resource(b"a=1&resource=https%3A%2F%2Fx") == "https://x"
    assert form_resource(b"") is None


# -- Service Fabric ------------------------------------------------------------------------

SF_QUERY = {"api-version": "2019-07-01-preview", "resource": RESOURCE}


def test_service_fabric() -> None:
    world = Sources()
    answer = call(world.fabric, ARC_PATH, SF_QUERY, {"Secret": SECRET})
    body = parsed(answer)
    assert list(body) == ["token_type", "access_token", "expires_on", "resource"]
    assert body["expires_on"] == int(NOW) + 86400
    assert claims_of(answer)["appid"] == SYSTEM.client_id


@pytest.mark.parametrize(
    ("query", "headers", "status", "code"),
    [
        (SF_QUERY, {}, 401, "SecretHeaderNotFound"),
        (SF_QUERY, {"Secret": "nope"}, 401, "SecretHeaderNotFound"),
        ({**SF_QUERY, "resource": ""}, {"Secret": SECRET}, 400, "ArgumentNullOrEmpty"),
        ({**SF_QUERY, "api-version": "2018-02-01"}, {"Secret": SECRET}, 400, "InvalidParameter"),
    ],
)
def test_service_fabric_errors(
    query: dict[str, str], headers: dict[str, str], status: int, code: str
) -> None:
    answer = call(Sources().fabric, ARC_PATH, query, headers)
    error = parsed(answer)["error"]
    assert answer.status == status and isinstance(error, dict) and error["code"] == code


def test_service_fabric_without_identity_is_managed_identity_not_found() -> None:
    answer = call(Sources(None).fabric, ARC_PATH, SF_QUERY, {"Secret": SECRET})
    assert answer.status == 404
    assert parsed(answer)["error"] == {
        "code": "ManagedIdentityNotFound",
        "message": "No managed identity is assigned",
    }


# -- shared ----------------------------------------------------------------------------------


def test_every_source_hands_out_the_same_cached_token() -> None:
    world = Sources()
    tokens = {
        parsed(arc_answered(world))["access_token"],
        parsed(app(world, "2019-08-01", "X-IDENTITY-HEADER"))["access_token"],
        parsed(call(world.fabric, ARC_PATH, SF_QUERY, {"Secret": SECRET}))["access_token"],
    }
    assert len(tokens) == 1


@pytest.mark.parametrize(
    ("given", "expected", "ok"),
    [(SECRET, SECRET, True), (f" {SECRET} ", SECRET, True), ("x", SECRET, False),
     (None, SECRET, False), ("", "", False)],
)  # fmt: skip
def test_secret_matches(given: str | None, expected: str, ok: bool) -> None:
    assert secret_matches(given, expected) is ok


# -- getplatformmetadata -------------------------------------------------------------------


def test_platform_metadata() -> None:
    dispatcher = Dispatcher(
        [("/metadata/identity/getplatformmetadata", PlatformMetadataEndpoint(Directory(BOTH)))]
    )
    path = "/metadata/identity/getplatformmetadata"
    answer = call(dispatcher, path, {"cred-api-version": "2.0"}, {"Metadata": "true"})
    assert parsed(answer) == {
        "cuId": {"vmId": "vm-guid", "vmssId": ""},
        "clientId": SYSTEM.client_id,
        "tenantId": TENANT,
        "attestationEndpoint": "",
    }
    chosen = call(
        dispatcher,
        path,
        {"cred-api-version": "2.0", "client_id": USER1.client_id},
        {"Metadata": "true"},
    )
    assert parsed(chosen)["clientId"] == USER1.client_id
    bad = call(dispatcher, path, {"cred-api-version": "1.0"}, {"Metadata": "true"})
    assert (bad.status, parsed(bad)["error"]) == (400, "invalid_request")
    no_header = call(dispatcher, path, {"cred-api-version": "2.0"})
    assert parsed(no_header)["error"] == "bad_request_102"

"""The admin API's reads of one VM, over real sockets, against what the VM itself gets:
the summary list (search, filters, paging), the metadata preview (the listener's bytes,
with no budget taken, no journal entry and no fault rule), the claims of its tokens,
and its attested document verified in place."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.support.server import RunningServer, server_fixture, start_server

USER_ID = (
    "/subscriptions/8d10da13-8125-4ba9-a717-bf7490507b3d/resourceGroups/shop/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/web-reader"
)
FLEET = f"""
vms:
  - name: web-1
    addresses: [127.0.0.1]
    identities: {{systemAssigned: true, userAssigned: [{{resourceId: "{USER_ID}"}}]}}
    instance:
      compute:
        vmId: 11111111-2222-4333-8444-555555555501
        vmSize: Standard_D2s_v5
        location: westeurope
        resourceGroupName: shop
        vmScaleSetName: webset
        tags: "env:prod;team:blue"
        osProfile: {{computerName: webhost000001}}
  - name: web-2
    addresses: [127.0.0.2]
    instance: {{compute: {{vmScaleSetName: webset, tags: "env:dev", location: eastus}}}}
  - name: db-1
    addresses: [127.0.0.3]
    instance: {{compute: {{resourceGroupName: data, location: westeurope}}}}
  - name: db-2
    addresses: [127.0.0.4]
    instance: {{compute: {{resourceGroupName: data, location: westeurope}}}}
"""
MANAGEMENT = "https://management.azure.com/"
TOKEN = "/metadata/identity/oauth2/token"
ATTESTED = "/metadata/attested/document"
PER_TOKEN = {"iat", "nbf", "exp", "uti"}  # differ from one token to the next


def _start(tmp: Path, rate_limit: str = "0") -> RunningServer:
    config = tmp / "fleet.yaml"
    config.write_text(FLEET)
    return start_server(tmp, config=str(config), rate_limit=rate_limit)


server = server_fixture("server", start=_start)


def _from(server: RunningServer, source: str, path: str) -> httpx.Response:
    """`path` as the VM calling from `source` asks for it."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, headers={"Metadata": "true"}) as client:
        return client.get(server.metadata_url + path)


def _ok(server: RunningServer, route: str, /, **params: str) -> Any:
    answer = server.admin("GET", route, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_summary_rows_searched_filtered_and_paged(server: RunningServer) -> None:
    page = _ok(server, "/vms", view="summary", limit="2")
    assert (page["total"], page["offset"], page["limit"]) == (4, 0, 2)
    assert [vm["name"] for vm in page["vms"]] == ["db-1", "db-2"]
    rest = _ok(server, "/vms", view="summary", offset="2")
    assert [vm["name"] for vm in rest["vms"]] == ["web-1", "web-2"] and rest["limit"] is None
    web = rest["vms"][0]  # the row's shape: tests/unit/fleet/test_catalog.py
    assert (web["vmId"], web["scaleSet"]) == ("11111111-2222-4333-8444-555555555501", "webset")
    assert (web["addresses"], web["tags"]) == (["127.0.0.1"], {"env": "prod", "team": "blue"})
    assert web["identities"] == {"system": True, "user": 1} and isinstance(web["rate"], int)

    def found(**params: str) -> list[str]:
        return [vm["name"] for vm in _ok(server, "/vms", view="summary", **params)["vms"]]

    assert found(q="WEBHOST") == ["web-1"]
    assert found(q="DATA") == ["db-1", "db-2"]
    assert found(tag="env") == ["web-1", "web-2"]
    assert found(tag="env=dev") == ["web-2"]
    assert found(scale_set="webset", address="127.0.0.2") == ["web-2"]
    assert _ok(server, "/vms", q="db", limit="1")["total"] == 2


def test_the_full_list_keeps_its_shape_for_the_cli(server: RunningServer) -> None:
    listed = _ok(server, "/vms")
    assert [vm["name"] for vm in listed["vms"]] == ["db-1", "db-2", "web-1", "web-2"]
    assert all("revision" in vm and "instance" in vm for vm in listed["vms"])
    assert (listed["total"], listed["offset"], listed["limit"]) == (4, 0, None)
    table = server.cli("vm", "list")
    assert table.returncode == 0, table.stderr
    assert "web-1" in table.stdout and "Standard_D2s_v5" in table.stdout


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/metadata/instance", {"api-version": "2019-11-01"}),
        ("/metadata/instance", {"api-version": "2025-04-07"}),
        ("/metadata/instance/compute/vmSize", {"api-version": "2021-02-01", "format": "text"}),
        ("/metadata/instance/compute", {"api-version": "2021-02-01", "format": "text"}),
        ("/metadata/instance/compute/vmSize", {"api-version": "2021-02-01"}),  # a leaf: 400
        ("/metadata/instance", {}),  # no api-version: 400
        ("/metadata/nothing", {"api-version": "2021-02-01"}),  # 404
        ("/metadata/versions", {}),
        ("/metadata/identity/info", {"api-version": "2018-02-01"}),
    ],
)
def test_the_preview_is_what_the_listener_serves_the_vm(
    server: RunningServer, path: str, params: dict[str, str]
) -> None:
    shown = _ok(server, "/vms/web-1/metadata", path=path, **params)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    real = _from(server, "127.0.0.1", path + ("?" + query if query else ""))
    assert shown["status"] == real.status_code
    assert shown["contentType"] == real.headers["content-type"]
    assert shown["body"].encode() == real.content


def test_absent_fields_between_an_old_and_the_newest_version(server: RunningServer) -> None:
    old = _ok(server, "/vms/web-1/metadata", **{"api-version": "2019-11-01"})["absent"]
    assert "compute.securityProfile" in old and "compute.userData" in old
    assert not any(field.startswith("compute.securityProfile.") for field in old)
    assert (
        "compute.osProfile"
        not in _ok(server, "/vms/web-1/metadata", **{"api-version": "2020-07-15"})["absent"]
    )
    assert _ok(server, "/vms/web-1/metadata", **{"api-version": "2025-04-07"})["absent"] == []
    part = {"path": "/metadata/instance/compute", "api-version": "2019-11-01"}
    assert _ok(server, "/vms/web-1/metadata", **part)["absent"] == []
    versions = _ok(server, "/vms/web-1/metadata/versions")
    assert versions["versions"][0] == versions["newest"] == "2025-04-07"
    assert versions["versions"][-1] == "2017-03-01"


def _token_claims(server: RunningServer, **selector: str) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in {"resource": MANAGEMENT, **selector}.items())
    real = _from(
        server, "127.0.0.1", f"/metadata/identity/oauth2/token?api-version=2018-02-01&{query}"
    )
    assert real.status_code == 200, real.text
    claims: dict[str, Any] = jwt.decode(
        real.json()["access_token"], options={"verify_signature": False}
    )
    return claims


def test_claims_are_those_of_the_tokens_the_vm_gets(server: RunningServer) -> None:
    answer = server.admin("GET", "/vms/web-1/identities/claims", params={"resource": MANAGEMENT})
    shown = answer.json()
    assert [i["kind"] for i in shown["identities"]] == ["system", "user"]
    system, user = shown["identities"]
    assert user["resourceId"] == USER_ID
    for identity, token in (
        (system, _token_claims(server)),
        (user, _token_claims(server, client_id=user["clientId"])),
    ):
        claims = identity["claims"]
        assert set(claims) == set(token)
        assert {k: v for k, v in claims.items() if k not in PER_TOKEN} == {
            k: v for k, v in token.items() if k not in PER_TOKEN
        }
        assert claims["exp"] - claims["iat"] == token["exp"] - token["iat"]
        assert claims["oid"] == identity["objectId"] and claims["appid"] == identity["clientId"]
        assert claims["tid"] == shown["tenantId"]
    assert "access_token" not in answer.text and "eyJ" not in answer.text  # never a token
    bare = _ok(server, "/vms/db-1/identities/claims", resource=MANAGEMENT)
    assert bare == {"tenantId": None, "identities": []}


def test_the_attested_document_verified_in_place(server: RunningServer) -> None:
    shown = _ok(server, "/vms/web-1/attested", **{"api-version": "2020-09-01", "nonce": "abc123"})
    check = shown["verification"]
    assert check["valid"] is True and check["errors"] == []
    assert "metadata.azure.com" in check["signer"]["subject"]
    chain = check["chain"]
    assert len(chain) == 3 and chain[0] == check["signer"]
    assert chain[-1]["subject"] == chain[-1]["issuer"]  # the root
    assert all(c["notBefore"] < c["notAfter"] for c in chain)
    document = shown["document"]
    assert document["nonce"] == "abc123"
    assert document["vmId"] == "11111111-2222-4333-8444-555555555501"
    assert shown["encoding"] == "pkcs7"
    assert b"abc123" in base64.b64decode(shown["signature"])
    # What the VM gets in the same seconds: the same signed answer (attested.cache_ttl).
    real = _from(
        server, "127.0.0.1", "/metadata/attested/document?api-version=2020-09-01&nonce=abc123"
    )
    assert real.json() == {"encoding": "pkcs7", "signature": shown["signature"]}


@pytest.mark.parametrize(
    ("path", "params", "status", "names"),
    [
        ("/vms", {"offset": "x"}, 400, "offset"),
        ("/vms", {"limit": "-1"}, 400, "limit"),
        ("/vms", {"view": "rows"}, 400, "view"),
        ("/vms/web-1/metadata", {"path": "/metadata/identity/oauth2/token"}, 400, "tokens"),
        ("/vms/web-1/metadata", {"path": "/healthz"}, 400, "path"),
        ("/vms/web-1/identities/claims", {}, 400, "resource"),
        ("/vms/web-1/attested", {"api-version": "2020-09-01", "nonce": "a-b"}, 400, "nonce"),
        ("/vms/web-1/attested", {}, 400, "api-version"),
        ("/vms/nobody/metadata", {}, 404, "nobody"),
        ("/vms/nobody/metadata/versions", {}, 404, "nobody"),
        ("/vms/nobody/identities/claims", {"resource": MANAGEMENT}, 404, "nobody"),
        ("/vms/nobody/attested", {"api-version": "2020-09-01"}, 404, "nobody"),
    ],
)
def test_errors_name_what_is_wrong(
    server: RunningServer, path: str, params: dict[str, str], status: int, names: str
) -> None:
    answer = server.admin("GET", path, params=params)
    assert answer.status_code == status
    assert names in answer.json()["error"]


def test_previews_take_no_budget_leave_no_journal_entry_and_skip_faults(tmp_path: Path) -> None:
    # One request per 20 s: a VM's first request passes, its second is throttled.
    server = _start(tmp_path, rate_limit="0.05")
    try:
        assert server.admin("POST", "/faults/boot", json={"seconds": 60}).status_code == 201
        full = {"api-version": "2021-02-01"}
        for _ in range(5):
            assert _ok(server, "/vms/db-2/metadata", **full)["status"] == 200  # no fault
        _ok(server, "/vms/db-2/attested", **{"api-version": "2020-09-01"})
        assert _ok(server, "/requests", vm="db-2")["requests"] == []
        rate = _ok(server, "/vms", view="summary", address="127.0.0.4")["vms"][0]["rate"]
        assert rate == 0
        path = "/metadata/instance?api-version=2021-02-01"
        assert _from(server, "127.0.0.4", path).status_code == 410  # the fault is on
        assert server.admin("DELETE", "/faults").status_code == 200
        assert _from(server, "127.0.0.4", path).status_code == 200  # the budget was whole
        assert _from(server, "127.0.0.4", path).status_code == 429  # and is now spent
        logged = _ok(server, "/requests", vm="db-2")["requests"]
        assert [e["status"] for e in logged] == [410, 200, 429]
        summary = _ok(server, "/vms", view="summary", address="127.0.0.4")
        assert summary["vms"][0]["rate"] == 3
    finally:
        server.stop()


def test_rate_is_null_with_the_journal_off(tmp_path: Path) -> None:
    config = tmp_path / "fleet.yaml"
    config.write_text(FLEET + "journal: {size: 0}\n")
    server = start_server(tmp_path, config=str(config))
    try:
        rows = _ok(server, "/vms", view="summary")["vms"]
        assert [row["rate"] for row in rows] == [None] * 4
        assert json.loads(server.admin("GET", "/vms/web-1/metadata/versions").text)["newest"]
    finally:
        server.stop()

"""A capture's answers -> a VM file, without a server: what is kept, what is left out
(with a note), and that the result is a VM file the inventory accepts."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from openimds.fleet.admin import parse_vms
from openimds.fleet.captured import Capture, IdentityClaims, NotAToken, claims_of, vm_file
from tests.support.imds import reference_vm_data

TENANT = "3f2d8c4e-6b1a-4e7f-9c3d-2a5b8e1f0c47"
VM_ID = (
    "/subscriptions/8d10da13-8125-4ba9-a717-bf7490507b3d/resourceGroups/rg/providers/"
    "Microsoft.Compute/virtualMachines/vm1"
)
UAI_ID = (
    "/subscriptions/8d10da13-8125-4ba9-a717-bf7490507b3d/resourceGroups/rg/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/uai"
)
SYSTEM = IdentityClaims(
    TENANT, "c4a7e1d2-8f3b-4c6a-9e0d-5b1f2a3c4d71", "9b0e2c7a-4d15-4f3e-8a6b-1c2d3e4f5a60", VM_ID
)
USER = IdentityClaims(
    TENANT, "e1f2a3b4-c5d6-4e7f-8091-a2b3c4d5e693", "5e8f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a82", UAI_ID
)


def _jwt(payload: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


def _instance() -> dict[str, Any]:
    instance: dict[str, Any] = reference_vm_data()["instance"]
    return instance


def test_a_tokens_ids_are_read_without_verifying_it() -> None:
    token = _jwt(
        {"tid": TENANT, "oid": USER.object_id, "appid": USER.client_id, "xms_mirid": UAI_ID}
    )
    assert claims_of(token) == USER
    assert claims_of(token).user_assigned and not SYSTEM.user_assigned
    assert claims_of(_jwt({"aud": "x"})) == IdentityClaims("", "", "", "")


@pytest.mark.parametrize("token", ["not-a-jwt", "a.!!!.c", "a." + "bnVsbA" + ".c", "a.b"])
def test_a_token_that_is_no_jwt_is_refused_without_echoing_it(token: str) -> None:
    with pytest.raises(NotAToken) as caught:
        claims_of(token)
    assert token not in str(caught.value)


def test_a_capture_becomes_an_importable_vm_file() -> None:
    lb = {"publicIpAddresses": [{"frontendIpAddress": "1.2.3.4", "privateIpAddress": "10.0.0.4"}]}
    capture = Capture(_instance(), "aGk=", lb, TENANT, [SYSTEM, USER, USER])
    data, notes = vm_file(capture, addresses=["127.0.0.5"])
    assert notes == []
    assert data["name"] == "demo-vm"  # compute.name
    assert data["addresses"] == ["127.0.0.5"]
    assert data["instance"]["compute"]["userData"] == "aGk="  # the userData endpoint wins
    assert data["loadbalancer"] == lb
    assert data["identities"] == {
        "tenantId": TENANT,
        "systemAssigned": {"clientId": SYSTEM.client_id, "objectId": SYSTEM.object_id},
        "userAssigned": [  # seen twice (no selector, then by client id): kept once
            {"clientId": USER.client_id, "objectId": USER.object_id, "resourceId": UAI_ID}
        ],
    }
    (spec,) = parse_vms(data)
    assert spec.instance.compute.vmSize == "Standard_D2s_v5"


def test_what_the_vm_model_does_not_know_is_left_out_with_a_note() -> None:
    instance = _instance()
    instance["compute"]["newAzureField"] = "x"
    instance["compute"]["osProfile"]["newFlag"] = "true"
    instance["compute"]["vmId"] = "not-a-guid"
    instance["network"]["interface"][0]["macAddress"] = "zz"
    data, notes = vm_file(Capture(instance), name="lab-1")
    assert sorted(notes) == [
        "left out instance.compute.newAzureField: not in openimds' VM model",
        "left out instance.compute.osProfile.newFlag: not in openimds' VM model",
        "left out instance.compute.vmId: not a GUID: 'not-a-guid' "
        "(e.g. 7f4a1c52-2b7e-4a8e-9d61-3c0f5b2d9e10)",
        "left out instance.network.interface[0].macAddress: not a MAC address: 'zz' "
        "(12 hex digits, e.g. 000D3AF806EC)",
    ]
    assert data["name"] == "lab-1"
    assert "vmId" not in data["instance"]["compute"]
    assert parse_vms(data)[0].instance.compute.location == "westeurope"


def test_without_identities_or_load_balancer_there_is_no_such_section() -> None:
    data, notes = vm_file(Capture({"compute": {"name": "bare"}}, tenant_id=TENANT))
    assert data == {"name": "bare", "instance": {"compute": {"name": "bare"}}}
    assert notes == []


def test_an_identity_without_guids_is_skipped_with_a_note() -> None:
    odd = IdentityClaims(TENANT, "", "app", VM_ID)
    data, notes = vm_file(Capture({"compute": {"name": "a"}}, identities=[odd, USER]))
    assert notes == ["identity app: its token carries no appid/oid GUIDs; skipped"]
    assert data["identities"]["tenantId"] == TENANT  # from the token's tid
    assert "systemAssigned" not in data["identities"]
    assert parse_vms(data)[0].identities is not None

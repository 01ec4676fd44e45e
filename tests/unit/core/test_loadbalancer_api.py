"""GET /metadata/loadbalancer: integers stay integers, Azure's documented messages verbatim."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openimds.core.http import JSON
from openimds.core.versions import GENERAL_VERSIONS
from tests.support.imds import INVALID_VERSION_BODY, call, reference_vm_data, vm_from

LB = "/metadata/loadbalancer"
NO_LB_BODY = (
    b'{"error":"No load balancer metadata is found. Check if your virtual machine is using '
    b'any nonbasic SKU load balancer and retry later."}'
)
UNEXPECTED_BODY = b'{"error":"Unexpected request. Check the query parameters and retry."}'
SUPPORTED = [v for v in GENERAL_VERSIONS if v >= "2020-10-01"]
TOO_OLD = [v for v in GENERAL_VERSIONS if v < "2020-10-01"]

GATEWAY = {
    "publicIpAddresses": [],
    "inboundRules": [
        {
            "frontendIpAddress": "10.1.0.7",
            "protocol": "all",
            "frontendPort": 0,
            "backendPort": 0,
            "privateIpAddress": "10.1.0.8",
        }
    ],
    "outboundRules": [],
    "tunnelInterfaces": [
        {
            "gatewayIpAddress": "10.1.0.7",
            "gatewayPort": 2666,
            "identifier": 800,
            "type": "internal",
            "protocol": "vxlan",
            "localIpAddress": "10.1.0.8",
            "localPort": 2666,
        }
    ],
}


def lb_vm(loadbalancer: dict[str, Any] | None) -> Any:
    data = reference_vm_data()
    data["loadbalancer"] = loadbalancer
    return vm_from(data)


@pytest.mark.parametrize("version", SUPPORTED)
def test_reference_vm_load_balancer(version: str) -> None:
    response = call(f"{LB}?api-version={version}")
    assert (response.status, response.content_type) == (200, JSON)
    body = json.loads(response.body)
    assert list(body) == ["loadbalancer"]
    assert body["loadbalancer"] == reference_vm_data()["loadbalancer"]
    rule = body["loadbalancer"]["inboundRules"][0]
    # 9: ports are JSON integers, not strings.
    assert rule["frontendPort"] == 80
    assert rule["backendPort"] == 8080
    assert b'"frontendPort":80,"backendPort":8080' in response.body
    assert "tunnelInterfaces" not in body["loadbalancer"]


@pytest.mark.parametrize("version", TOO_OLD)
def test_versions_before_2020_10_01_are_refused(version: str) -> None:
    response = call(f"{LB}?api-version={version}")
    assert (response.status, response.body) == (400, INVALID_VERSION_BODY)


def test_gateway_tunnels_keep_integers() -> None:
    response = call(f"{LB}?api-version=2021-01-01", vm=lb_vm(GATEWAY))
    body = json.loads(response.body)["loadbalancer"]
    tunnel = body["tunnelInterfaces"][0]
    for key in ("gatewayPort", "identifier", "localPort"):
        assert isinstance(tunnel[key], int)
    assert tunnel == GATEWAY["tunnelInterfaces"][0]
    assert body["inboundRules"][0]["protocol"] == "all"


def test_no_load_balancer_is_404() -> None:
    response = call(f"{LB}?api-version=2020-10-01", vm=lb_vm(None))
    assert (response.status, response.body, response.content_type) == (404, NO_LB_BODY, JSON)


@pytest.mark.parametrize(
    "query",
    [
        "api-version=2020-10-01&extended=true",
        "api-version=2020-10-01&nonce=1",
        "api-version=2020-10-01&Format=json",
        "x=1",  # unknown parameters are reported before the missing version
    ],
)
def test_unknown_parameters_are_400(query: str) -> None:
    response = call(f"{LB}?{query}")
    assert (response.status, response.body) == (400, UNEXPECTED_BODY)


def test_format_json_only() -> None:
    assert call(f"{LB}?api-version=2020-10-01&format=json").status == 200
    assert call(f"{LB}?api-version=2020-10-01&format=text").status == 400


def test_no_route_filtering() -> None:
    response = call(f"{LB}/loadbalancer?api-version=2020-10-01")
    assert response.status == 404


def test_answer_is_cacheable_per_revision() -> None:
    assert call(f"{LB}?api-version=2020-10-01").cacheable

"""Request rules every endpoint shares, and routing (1, 5, 10)."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest

from openimds.core.app import build_dispatcher
from openimds.core.dispatch import has_metadata_header
from openimds.core.endpoint import BaseEndpoint
from openimds.core.errors import (
    BadRequest,
    ImdsError,
    MissingMetadataHeader,
    TooManyRequests,
    error_response,
)
from openimds.core.http import JSON, Request, Response
from openimds.core.vm import VmSnapshot
from tests.support.imds import (
    INVALID_VERSION_BODY,
    MISSING_HEADER_BODY,
    call,
    reference_vm,
    request,
)

INSTANCE = "/metadata/instance?api-version=2021-02-01"
FORWARDED_BODY = (
    b'{"error":"Bad request. Requests with an X-Forwarded-For header are not allowed. '
    b'For more information refer to aka.ms/azureimds"}'
)
ENDPOINTS = [
    INSTANCE,
    "/metadata/instance/compute/vmId?api-version=2021-02-01&format=text",
    "/metadata/versions",
    "/metadata/loadbalancer?api-version=2020-10-01",
]


def duplicate_body(name: str) -> bytes:
    return (
        b'{"error":"Bad request. Query parameter \'' + name.encode() + b"' is specified more "
        b'than once. For more information refer to aka.ms/azureimds"}'
    )


# -- the Metadata header -------------------------------------------------------------------
@pytest.mark.parametrize("value", ["true", "True", "TRUE", "tRuE", " true "])
def test_metadata_true_in_any_case_is_accepted(value: str) -> None:
    # 13: WALinuxAgent sends `Metadata: True`.
    assert call(INSTANCE, headers=[("Metadata", value)]).status == 200


@pytest.mark.parametrize("value", ["false", "False", "", "1", "yes", "truee", "true,true"])
def test_metadata_other_values_are_refused(value: str) -> None:
    response = call(INSTANCE, headers=[("Metadata", value)])
    assert (response.status, response.body) == (400, MISSING_HEADER_BODY)


@pytest.mark.parametrize("target", [*ENDPOINTS, "/metadata", "/nowhere", "/metadata/x"])
def test_missing_header_everywhere(target: str) -> None:
    response = call(target, headers=[])
    assert (response.status, response.body, response.content_type) == (
        400,
        MISSING_HEADER_BODY,
        JSON,
    )


def test_header_name_is_case_insensitive() -> None:
    assert call(INSTANCE, headers=[("METADATA", "true")]).status == 200


def test_first_metadata_header_counts() -> None:
    assert has_metadata_header(request("/", headers=[("Metadata", "true")]))
    assert not has_metadata_header(request("/", headers=[("Metadata-X", "true")]))


def test_missing_header_is_checked_before_the_version() -> None:
    response = call("/metadata/instance", headers=[])
    assert response.body == MISSING_HEADER_BODY


# -- proxies --------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ENDPOINTS)
@pytest.mark.parametrize("forwarded", ["10.0.0.1", "", "1.2.3.4, 5.6.7.8"])
def test_x_forwarded_for_is_refused(target: str, forwarded: str) -> None:
    headers = [("Metadata", "true"), ("X-Forwarded-For", forwarded)]
    response = call(target, headers=headers)
    assert (response.status, response.body) == (400, FORWARDED_BODY)


def test_x_forwarded_for_wins_over_a_missing_header() -> None:
    response = call(INSTANCE, headers=[("x-forwarded-for", "10.0.0.1")])
    assert response.body == FORWARDED_BODY


# -- query parameters -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "name"),
    [
        (INSTANCE + "&api-version=2021-02-01", "api-version"),
        (INSTANCE + "&api-version=2019-06-01", "api-version"),
        (INSTANCE + "&format=json&format=json", "format"),
        (INSTANCE + "&extended=true&extended=true", "extended"),
        ("/metadata/versions?a=1&a=2", "a"),
        ("/metadata/loadbalancer?api-version=2020-10-01&api-version=2020-10-01", "api-version"),
        ("/metadata/instance?format=text&format=text", "format"),
    ],
)
def test_duplicate_parameters_are_refused(target: str, name: str) -> None:
    response = call(target)
    assert (response.status, response.body) == (400, duplicate_body(name))


def test_parameter_names_are_case_sensitive() -> None:
    # Not a duplicate, and not the api-version either.
    assert call(INSTANCE + "&Api-Version=2021-02-01").status == 200


# -- methods --------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
@pytest.mark.parametrize(
    "target", [INSTANCE, "/metadata/versions", "/metadata/loadbalancer?api-version=2020-10-01"]
)
def test_other_methods_are_405_with_allow(method: str, target: str) -> None:
    response = call(target, method=method)
    path = target.partition("?")[0]
    assert response.status == 405
    assert response.headers == (("Allow", "GET"),)
    assert json.loads(response.body) == {
        "error": f'Http method isn\'t allowed: Path = "{path}", Method = "{method}"'
    }


def test_405_on_a_route_filter_names_the_full_path() -> None:
    response = call("/metadata/instance/compute?api-version=2021-02-01", method="POST")
    assert json.loads(response.body)["error"].endswith(
        'Path = "/metadata/instance/compute", Method = "POST"'
    )


# -- unknown paths --------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/metadata", "/metadata/", "/", "/latest/meta-data", "/x/y"])
def test_unknown_path_without_version_is_the_version_error(path: str) -> None:
    # Live Azure: GET /metadata with no api-version answers with the api-version error.
    response = call(path)
    assert (response.status, response.body) == (400, INVALID_VERSION_BODY)


@pytest.mark.parametrize(
    "path",
    [
        "/metadata",
        "/metadata/instances",
        "/metadata/Instance",
        "/metadata/versions/2021-02-01",
        "/metadata/loadbalancer/loadbalancer",
        "/metadata/identity/oauth2/token",
        "/instance",
    ],
)
@pytest.mark.parametrize("version", ["2021-02-01", "2025-04-07"])
def test_unknown_path_with_version_is_404(path: str, version: str) -> None:
    response = call(f"{path}?api-version={version}")
    assert response.status == 404
    assert json.loads(response.body) == {
        "error": f'API isn\'t found: Path = "{path}", Method = "GET"'
    }


@pytest.mark.parametrize("suffix", ["", "/"])
def test_trailing_slash_on_endpoints(suffix: str) -> None:
    assert call(f"/metadata/instance{suffix}?api-version=2021-02-01").status == 200
    assert call(f"/metadata/versions{suffix}").status == 200
    assert call(f"/metadata/loadbalancer{suffix}?api-version=2020-10-01").status == 200


def test_double_slashes_collapse() -> None:
    assert call("//metadata//instance//compute?api-version=2021-02-01").status == 200


def test_route_picks_the_longest_endpoint_prefix() -> None:
    svc = build_dispatcher()
    assert svc.route(request("/metadata/instance/compute/vmId")) is not None
    assert svc.route(request("/metadata/versions/x")) is None
    assert svc.route(request("/metadata")) is None


# -- endpoints added by features ------------------------------------------------------------
class _Echo(BaseEndpoint):
    methods: ClassVar[tuple[str, ...]] = ("GET", "POST")
    name: ClassVar[str] = "echo"

    def own_error(self, error: ImdsError) -> ImdsError:
        if isinstance(error, MissingMetadataHeader):
            return BadRequest("echo needs the header")
        if isinstance(error, TooManyRequests):
            return TooManyRequests("slow down")
        return error

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        if request.param("fail") is not None:
            raise BadRequest("asked to fail")
        return Response(200, f"{request.method} {vm.name} {now}".encode(), cacheable=False)


def test_feature_endpoints_get_the_shared_rules() -> None:
    svc = build_dispatcher([("/metadata/echo", _Echo())])
    vm = reference_vm()
    ok = svc.handle(request("/metadata/echo", "POST"), vm, 5.0)
    assert (ok.status, ok.body, ok.cacheable) == (200, b"POST demo-vm 5.0", False)
    denied = svc.handle(request("/metadata/echo", "PUT"), vm, 5.0)
    assert (denied.status, denied.headers) == (405, (("Allow", "GET, POST"),))
    no_header = svc.handle(request("/metadata/echo", headers=[]), vm, 5.0)
    assert no_header.body == b'{"error":"echo needs the header"}'
    failed = svc.handle(request("/metadata/echo?fail=1"), vm, 5.0)
    assert (failed.status, failed.body) == (400, b'{"error":"asked to fail"}')
    assert svc.route(request("/metadata/echo/deeper")) is None
    assert "echo" in [endpoint.name for endpoint in svc.endpoints]


def test_error_response_is_the_one_serialiser() -> None:
    response = error_response(TooManyRequests())
    assert (response.status, response.body, response.content_type) == (
        429,
        b'{"error":"Too many requests"}',
        JSON,
    )
    assert error_response(ImdsError()).status == 500

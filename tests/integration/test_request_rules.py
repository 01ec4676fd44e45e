"""Request rules end to end: exact bodies and headers as a client sees them."""

from __future__ import annotations

import json
from email.utils import parsedate_to_datetime

import pytest

from tests.support.rawhttp import RawResponse, exchange, get
from tests.support.server import RunningServer

JSON = "application/json; charset=utf-8"
AKA = "For more information refer to aka.ms/azureimds"
VERSION_ERROR = {
    "error": f"Bad request. api-version is invalid or was not specified in the request. {AKA}",
    "newest-versions": ["2025-04-07", "2024-07-17", "2024-03-15"],
}
MISSING_HEADER = {"error": "Bad request: . Required metadata header not specified"}
DOC = "/metadata/instance?api-version=2021-02-01"


def _fetch(
    live: RunningServer, path: str, *, metadata: bool = True, extra: str = ""
) -> RawResponse:
    return exchange(live.metadata_url, get(path, metadata=metadata, extra=extra))


def _assert_wire_headers(response: RawResponse) -> None:
    assert response.header_count("content-length") == 1
    assert int(response.header("content-length") or -1) == len(response.body)
    assert (response.header("server") or "").startswith("IMDS/")
    date = parsedate_to_datetime(response.header("date") or "")
    assert date.tzinfo is not None


@pytest.mark.parametrize(
    ("path", "extra", "metadata", "status", "body"),
    [
        (DOC, "", False, 400, MISSING_HEADER),
        (DOC, "Metadata: false\r\n", False, 400, MISSING_HEADER),
        (DOC, "Metadata: yes\r\n", False, 400, MISSING_HEADER),
        (DOC, "Metadata:\r\n", False, 400, MISSING_HEADER),
        (
            DOC,
            "X-Forwarded-For: 10.0.0.1\r\n",
            True,
            400,
            {
                "error": "Bad request. Requests with an X-Forwarded-For header are not "
                f"allowed. {AKA}"
            },
        ),
        (
            DOC + "&api-version=2021-02-01",
            "",
            True,
            400,
            {
                "error": "Bad request. Query parameter 'api-version' is specified more "
                f"than once. {AKA}"
            },
        ),
        ("/metadata/instance", "", True, 400, VERSION_ERROR),
        ("/metadata/instance?api-version=latest", "", True, 400, VERSION_ERROR),
        ("/metadata/instance?api-version=2099-01-01", "", True, 400, VERSION_ERROR),
        ("/metadata/instance?api-version=", "", True, 400, VERSION_ERROR),
        ("/metadata", "", True, 400, VERSION_ERROR),
        (
            "/metadata/nope?api-version=2021-02-01",
            "",
            True,
            404,
            {"error": 'API isn\'t found: Path = "/metadata/nope", Method = "GET"'},
        ),
        (
            "/admin/vms?api-version=2021-02-01",
            "",
            True,
            404,
            {"error": 'API isn\'t found: Path = "/admin/vms", Method = "GET"'},
        ),
    ],
)
def test_request_rules_answer_with_azures_bodies(
    live: RunningServer, path: str, extra: str, metadata: bool, status: int, body: object
) -> None:
    response = _fetch(live, path, extra=extra, metadata=metadata)
    assert response.status == status
    assert response.header("content-type") == JSON
    assert json.loads(response.body) == body
    assert b" " not in response.body.split(b'"')[0]  # compact JSON
    _assert_wire_headers(response)


@pytest.mark.parametrize("value", ["true", "True", "TRUE", " true "])
def test_metadata_header_is_case_insensitive(live: RunningServer, value: str) -> None:
    response = _fetch(live, DOC, metadata=False, extra=f"Metadata: {value}\r\n")
    assert response.status == 200
    assert json.loads(response.body)["compute"]["name"] == "demo-vm"
    assert response.header("content-type") == JSON
    _assert_wire_headers(response)


def test_text_leaf_headers(live: RunningServer) -> None:
    response = _fetch(live, "/metadata/instance/compute/name?api-version=2021-02-01&format=text")
    assert response.status == 200
    assert response.body == b"demo-vm"
    assert response.header("content-type") == "text/plain; charset=utf-8"
    _assert_wire_headers(response)


def test_trailing_slash_reaches_the_same_endpoint(live: RunningServer) -> None:
    plain = _fetch(live, DOC)
    slashed = _fetch(live, "/metadata/instance/?api-version=2021-02-01")
    assert slashed.status == plain.status == 200
    assert slashed.body == plain.body


def test_extended_parameter_from_cloud_init_is_accepted(live: RunningServer) -> None:
    response = _fetch(live, "/metadata/instance?api-version=2021-08-01&extended=true")
    assert response.status == 200
    assert json.loads(response.body)["compute"]["name"] == "demo-vm"

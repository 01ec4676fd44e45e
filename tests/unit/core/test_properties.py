"""Property tests over paths, query strings and headers: whatever arrives, the core
answers in Azure's shapes. It never raises, never answers 500, every JSON body parses,
text is served only as a 200 to format=text, and instance JSON holds only strings."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from hypothesis import given, settings
from hypothesis import strategies as st

from openimds.core.http import JSON, TEXT, Request
from openimds.core.versions import GENERAL_VERSIONS
from tests.support.imds import dispatcher, reference_vm

# What the HTTP adapter can hand over: targets and headers decoded as latin-1.
LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF)
KNOWN_SEGMENTS = [
    "metadata",
    "instance",
    "versions",
    "loadbalancer",
    "compute",
    "network",
    "interface",
    "ipv4",
    "ipAddress",
    "privateIpAddress",
    "vmId",
    "tagsList",
    "storageProfile",
    "dataDisks",
    "userData",
    "0",
    "1",
    "01",
    "-1",
    "%30",
    "%2F",
    "%C2%B2",
    "%ZZ",
    "..",
    ".",
]
SEGMENT = st.one_of(st.sampled_from(KNOWN_SEGMENTS), st.text(LATIN1, max_size=12))
# Real routes of the reference VM, so that odd segments also land on arrays and leaves.
ROUTES = [
    [],
    ["compute"],
    ["network", "interface"],
    ["network", "interface", "0", "ipv4", "ipAddress"],
    ["network", "interface", "0", "ipv4", "subnet", "0"],
    ["compute", "publicKeys"],
    ["compute", "tagsList"],
    ["compute", "storageProfile", "dataDisks"],
    ["compute", "vmId"],
]
ROUTE = st.builds(
    lambda known, rest: [*known, *rest], st.sampled_from(ROUTES), st.lists(SEGMENT, max_size=3)
)
PATH = st.builds(
    lambda prefix, rest, slash: "/" + "/".join([*prefix, *rest]) + ("/" if slash else ""),
    st.sampled_from([[], ["metadata"], ["metadata", "instance"]]),
    st.one_of(ROUTE, st.lists(SEGMENT, max_size=6)),
    st.booleans(),
)
PARAM_NAME = st.one_of(
    st.sampled_from(["api-version", "format", "extended", "nonce", "Api-Version", ""]),
    st.text(LATIN1, max_size=8),
)
PARAM_VALUE = st.one_of(
    st.sampled_from([*GENERAL_VERSIONS, "latest", "json", "text", "true", "", "2019-04-01"]),
    st.text(LATIN1, max_size=12),
)
STRUCTURED_QUERY = st.lists(st.tuples(PARAM_NAME, PARAM_VALUE), max_size=5).map(
    lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)
)
QUERY = st.one_of(STRUCTURED_QUERY, st.text(LATIN1, max_size=40))
HEADER = st.one_of(
    st.tuples(
        st.sampled_from(["metadata", "x-forwarded-for", "host", "user-agent"]),
        st.one_of(st.sampled_from(["true", "True", "TRUE", "false", ""]), st.text(LATIN1)),
    ),
    st.tuples(st.text(LATIN1, min_size=1, max_size=10).map(str.lower), st.text(LATIN1)),
)
HEADERS = st.one_of(
    st.lists(HEADER, max_size=4),
    st.lists(HEADER, max_size=3).map(lambda h: [("metadata", "true"), *h]),
)
METHOD = st.one_of(
    st.sampled_from(["GET", "GET", "GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS"]),
    st.text(st.characters(min_codepoint=0x41, max_codepoint=0x5A), min_size=1, max_size=8),
)


def all_strings(node: Any) -> bool:
    if isinstance(node, dict):
        return all(all_strings(v) for v in node.values())
    if isinstance(node, list):
        return all(all_strings(v) for v in node)
    return isinstance(node, str)


@settings(max_examples=400, deadline=None)
@given(method=METHOD, path=PATH, query=QUERY, headers=HEADERS)
def test_core_always_answers_in_azures_shapes(
    method: str, path: str, query: str, headers: list[tuple[str, str]]
) -> None:
    pairs = tuple(parse_qsl(query, keep_blank_values=True))
    request = Request(method, path, pairs, tuple(headers), peer="127.0.0.1")
    response = dispatcher().handle(request, reference_vm(), 1_700_000_000.0)

    assert response.status in {200, 400, 404, 405}
    assert response.content_type in {JSON, TEXT}
    for name, value in response.headers:
        name.encode("latin-1")
        value.encode("latin-1")  # the adapter writes headers as latin-1
    if response.content_type == TEXT:
        assert response.status == 200
        assert request.param("format") == "text"
        response.body.decode("utf-8")
        return
    body = json.loads(response.body)
    if response.status != 200:
        assert isinstance(body, dict)
        assert isinstance(body["error"], str)
        assert set(body) <= {"error", "newest-versions"}
    elif request.segments()[:2] == ("metadata", "instance"):
        assert all_strings(body)


@settings(max_examples=200, deadline=None)
@given(
    route=ROUTE,
    version=st.sampled_from(GENERAL_VERSIONS),
    fmt=st.sampled_from([None, "json", "text"]),
)
def test_route_filters_never_fail_hard(route: list[str], version: str, fmt: str | None) -> None:
    """Any route below /metadata/instance is a 200, a 404 or the leaf 400; nothing else."""
    query = [("api-version", version)] + ([("format", fmt)] if fmt else [])
    path = "/metadata/instance/" + "/".join(route)
    request = Request("GET", path, tuple(query), (("metadata", "true"),))
    response = dispatcher().handle(request, reference_vm(), 0.0)
    assert response.status in {200, 400, 404}
    if response.status == 400:
        assert fmt != "text"
        assert b"leaf node" in response.body

"""The metadata listener's response cache, driven through a fake transport (no sockets)."""

from __future__ import annotations

import json
import re
from typing import Any

from openimds.core.app import build_dispatcher
from openimds.inventory.live import LiveInventory
from openimds.web.metadata.protocol import MetadataServer
from tests.support.imds import vm_spec
from tests.support.listener import metadata_server, send

DOC = "/metadata/instance?api-version=2021-02-01"
DATE = re.compile(rb"Date: [^\r]*\r\n")


def _ask(server: MetadataServer, path: str, headers: str = "Metadata: true\r\n") -> bytes:
    """One request on a fresh connection; the raw answer without its Date line."""
    transport = send(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    return DATE.sub(b"", transport.written)


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def _body(raw: bytes) -> Any:
    return json.loads(raw.partition(b"\r\n\r\n")[2])


def test_cached_answer_equals_uncached_answer() -> None:
    inventory = LiveInventory([vm_spec("vm-a")])
    server = metadata_server(inventory)
    first = _ask(server, DOC)
    assert server.cache_for(inventory.vms["vm-a"]).entries  # the miss filled the cache
    second = _ask(server, DOC)
    assert first == second
    # A fresh server (nothing cached) renders the same bytes.
    assert _ask(metadata_server(), DOC) == first
    # Connection: close bypasses the cache; the body is the same.
    uncached = _ask(server, DOC, "Metadata: true\r\nConnection: close\r\n")
    assert _body(uncached) == _body(first)


def test_other_header_states_never_get_the_cached_success() -> None:
    server = metadata_server()
    assert _status(_ask(server, DOC)) == 200
    for headers in (
        "",
        "Metadata: false\r\n",
        "Metadata: true\r\nX-Forwarded-For: 10.0.0.9\r\n",
        "Metadata: false\r\nMetadata: true\r\n",  # the first value counts
    ):
        assert _status(_ask(server, DOC, headers)) == 400, headers
    assert _status(_ask(server, DOC)) == 200


def test_each_error_is_cached_under_its_own_cause() -> None:
    server = metadata_server()
    forwarded = _ask(server, DOC, "Metadata: true\r\nX-Forwarded-For: 10.0.0.9\r\n")
    missing = _ask(server, DOC, "")
    assert "X-Forwarded-For" in _body(forwarded)["error"]
    assert "metadata header" in _body(missing)["error"]
    # A doubled header whose first value is true is a success for the core; it must not
    # be filed under "no header" either.
    assert _status(_ask(server, DOC, "Metadata: true\r\nMetadata: false\r\n")) == 200
    assert _ask(server, DOC, "") == missing


def test_a_changed_vm_is_never_served_stale() -> None:
    inventory = LiveInventory([vm_spec("vm-a", location="westeurope")])
    server = metadata_server(inventory)
    path = "/metadata/instance/compute/location?api-version=2021-02-01&format=text"
    assert _ask(server, path).endswith(b"westeurope")
    assert _ask(server, path).endswith(b"westeurope")  # now from the cache
    inventory.replace([vm_spec("vm-a", location="northeurope")])
    assert _ask(server, path).endswith(b"northeurope")
    assert _body(_ask(server, DOC))["compute"]["location"] == "northeurope"


def test_vms_do_not_share_cached_answers() -> None:
    inventory = LiveInventory(
        [vm_spec("vm-a", addresses=["127.0.0.1"]), vm_spec("vm-b", addresses=["127.0.0.2"])]
    )
    server = metadata_server(inventory)
    assert _body(_ask(server, DOC))["compute"]["name"] == "vm-a"
    transport = send(server, f"GET {DOC} HTTP/1.1\r\nMetadata: true\r\n\r\n".encode(), "127.0.0.2")
    assert _body(transport.written)["compute"]["name"] == "vm-b"


def test_time_bound_answers_are_reused_only_until_valid_until() -> None:
    """A cacheable answer with `valid_until` (a token's countdown) is served from the byte
    cache before that time and rebuilt by the core after it."""
    from openimds.core.endpoint import BaseEndpoint
    from openimds.core.http import Request, Response
    from openimds.core.vm import VmSnapshot

    calls: list[float] = []

    class Clocked(BaseEndpoint):
        name = "clocked"

        def __init__(self, until: float) -> None:
            self.until = until

        def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
            calls.append(now)
            body = json.dumps({"n": len(calls)}, separators=(",", ":")).encode()
            return Response(200, body, cacheable=True, valid_until=self.until)

    def server_with(until: float) -> MetadataServer:
        return metadata_server(dispatcher=build_dispatcher([("/metadata/clocked", Clocked(until))]))

    fresh = server_with(until=4_000_000_000.0)  # far in the future: reused
    assert b'{"n":1}' in _ask(fresh, "/metadata/clocked")
    assert b'{"n":1}' in _ask(fresh, "/metadata/clocked")
    assert len(calls) == 1
    calls.clear()
    stale = server_with(until=1.0)  # already past: rebuilt every time
    assert b'{"n":1}' in _ask(stale, "/metadata/clocked")
    assert b'{"n":2}' in _ask(stale, "/metadata/clocked")
    assert len(calls) == 2

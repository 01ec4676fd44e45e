"""The reference VM and requests built the way the HTTP adapter builds them, for tests
that drive the pure core directly (no sockets)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

from openimds.config.vm_model import VmSpec
from openimds.core.app import build_dispatcher
from openimds.core.dispatch import Dispatcher
from openimds.core.http import Request, Response
from openimds.core.vm import VmSnapshot
from openimds.inventory.live import spec_snapshot

METADATA = (("metadata", "true"),)

# Azure's api-version error, verbatim from its documentation and a live answer.
INVALID_VERSION_BODY = (
    b'{"error":"Bad request. api-version is invalid or was not specified in the request. '
    b'For more information refer to aka.ms/azureimds",'
    b'"newest-versions":["2025-04-07","2024-07-17","2024-03-15"]}'
)
# The live body for a missing Metadata header (quoted in a public Azure issue).
MISSING_HEADER_BODY = b'{"error":"Bad request: . Required metadata header not specified"}'
NOT_FOUND_BODY = b'{"error":"Not found"}'
LEAF_BODY = (
    b'{"error":"Bad request. The requested element is a leaf node; use format=text. '
    b'For more information refer to aka.ms/azureimds"}'
)


def reference_vm_data() -> dict[str, Any]:
    """src/openimds/data/demo-vm.json, the VM every core test and golden file uses."""
    text = resources.files("openimds").joinpath("data/demo-vm.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def reference_spec() -> VmSpec:
    return VmSpec.model_validate(reference_vm_data())


def reference_vm() -> VmSnapshot:
    return spec_snapshot(reference_spec(), 1)


def vm_from(data: Mapping[str, Any], revision: int = 1) -> VmSnapshot:
    return spec_snapshot(VmSpec.model_validate(data), revision)


def vm_spec(name: str, *, addresses: Sequence[str] = (), **compute: object) -> VmSpec:
    """A VM-file entry with just its compute name (and any other compute fields given),
    calling from `addresses` (none: it answers every caller when it is the only VM)."""
    data: dict[str, object] = {"instance": {"compute": {"name": name, **compute}}}
    if addresses:
        data["addresses"] = list(addresses)
    return VmSpec.model_validate(data)


def bare_vm(name: str, *addresses: str, revision: int = 1) -> VmSnapshot:
    """A VM the core knows by name only: no instance document."""
    return VmSnapshot(id=name, name=name, revision=revision, instance={}, addresses=addresses)


@cache
def dispatcher() -> Dispatcher:
    return build_dispatcher()


def request(
    target: str,
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = METADATA,
) -> Request:
    """A core Request from a raw request target, split as web/metadata_server.py does."""
    path, _, query = target.partition("?")
    return Request(
        method=method,
        path=path,
        query=tuple(parse_qsl(query, keep_blank_values=True)),
        headers=tuple((name.lower(), value) for name, value in headers),
        peer="127.0.0.1",
    )


def call(
    target: str,
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = METADATA,
    vm: VmSnapshot | None = None,
    now: float = 1_700_000_000.0,
) -> Response:
    """Run one request through the standard service against the reference VM."""
    return dispatcher().handle(request(target, method, headers), vm or reference_vm(), now)


def error_text(response: Response) -> str:
    body = json.loads(response.body)
    assert isinstance(body, dict)
    text = body["error"]
    assert isinstance(text, str)
    return text

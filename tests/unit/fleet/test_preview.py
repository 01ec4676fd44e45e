"""Previews: the metadata service's own answer for a VM, tokens and other paths refused,
and the absent fields of a full instance document only."""

from __future__ import annotations

import pytest

from openimds.core.app import build_dispatcher
from openimds.core.http import Request
from openimds.fleet.preview import MetadataPreview, PreviewRefused, absent_fields
from openimds.inventory.live import LiveInventory
from tests.support.imds import METADATA, reference_spec

NOW = 1_750_000_000.0


def preview() -> MetadataPreview:
    return MetadataPreview(LiveInventory([reference_spec()]), build_dispatcher, lambda: NOW)


def test_the_answer_is_the_services_for_the_same_request() -> None:
    previews = preview()
    vm = previews.inventory.snapshot(reference_spec().display_name)
    query = (("api-version", "2021-02-01"), ("format", "text"))
    got = previews.get(vm, "/metadata/instance/compute/vmSize", query)
    direct = build_dispatcher().handle(
        Request("GET", "/metadata/instance/compute/vmSize", query, METADATA), vm, NOW
    )
    assert got == direct
    assert got.body == str(vm.compute["vmSize"]).encode()
    missing = previews.get(vm, "/metadata/instance", ())  # what the VM gets: a 400
    assert missing.status == 400 and b"api-version" in missing.body
    odd = previews.get(vm, "/metadata/instance/compute/no such", [("api-version", "2021-02-01")])
    assert odd.status == 404  # the space is sent encoded, as a client sends it


@pytest.mark.parametrize(
    "path",
    [
        "/metadata/identity/oauth2/token",
        "/metadata/identity/oauth2/token/",
        "/metadata/identity/oauth2/%74oken",
        "//metadata/identity/oauth2/token",
    ],
)
def test_a_token_is_never_previewed(path: str) -> None:
    previews = preview()
    vm = next(iter(previews.inventory.vms.values()))
    with pytest.raises(PreviewRefused, match="tokens are never shown"):
        previews.request(vm, path, [("api-version", "2018-02-01"), ("resource", "x")])


@pytest.mark.parametrize(
    "path", ["/", "/foo", "metadata/instance", "/metadatax", "/metadata/instance?x=1", ""]
)
def test_only_metadata_paths_are_previewed(path: str) -> None:
    previews = preview()
    vm = next(iter(previews.inventory.vms.values()))
    with pytest.raises(PreviewRefused, match=r"^path: "):
        previews.request(vm, path, [])


def test_absent_fields_only_for_a_served_full_document() -> None:
    previews = preview()
    vm = next(iter(previews.inventory.vms.values()))

    def fields(path: str, version: str) -> list[str]:
        request = previews.request(vm, path, [("api-version", version)])
        return absent_fields(vm, request, previews.answer(vm, request))

    assert "compute.securityProfile" in fields("/metadata/instance", "2019-11-01")
    assert fields("/metadata/instance/", "2019-11-01") == fields("/metadata/instance", "2019-11-01")
    assert fields("/metadata/instance", "2025-04-07") == []
    assert fields("/metadata/instance/compute", "2019-11-01") == []  # a part
    assert fields("/metadata/instance", "1999-01-01") == []  # refused: no document

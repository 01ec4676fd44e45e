"""The attested endpoint without a server: field gating, nonce rules, versions, cache.

The signer here is a stand-in for the crypto port that returns the content it was given,
so each test can read back exactly what would have been signed.
"""

from __future__ import annotations

import base64
import calendar
import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openimds.core.app import build_dispatcher
from openimds.core.attested_api import AttestedEndpoint, SignedDocumentCache, default_nonce
from openimds.core.http import Request, Response
from openimds.core.instance import Node
from openimds.core.versions import GENERAL_VERSIONS, NEWEST_VERSIONS
from openimds.core.vm import VmSnapshot

PATH = "/metadata/attested/document"
NOW = float(calendar.timegm((2018, 11, 28, 0, 16, 17)))  # the validation sample's createdOn


class EchoSigner:
    """Returns the content as the 'signature', and counts calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, str]] = []

    def sign(self, content: bytes, az_environment: str) -> bytes:
        self.calls.append((content, az_environment))
        return content


def vm(revision: int = 1, **compute: Node) -> VmSnapshot:
    base: dict[str, Node] = {
        "vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6",
        "subscriptionId": "8d10da13-8125-4ba9-a717-bf7490507b3d",
        "sku": "22_04-lts-gen2",
        "licenseType": "",
        "azEnvironment": "AzurePublicCloud",
        "plan": {"name": "planName", "product": "planProduct", "publisher": "planPublisher"},
    }
    base.update(compute)
    return VmSnapshot(id="vm1", name="vm1", revision=revision, instance={"compute": base})


def call(
    endpoint: AttestedEndpoint,
    query: tuple[tuple[str, str], ...],
    *,
    snapshot: VmSnapshot | None = None,
    now: float = NOW,
) -> Response:
    dispatcher = build_dispatcher([(PATH, endpoint)])
    request = Request("GET", PATH, query, (("metadata", "true"),))
    return dispatcher.handle(request, snapshot or vm(), now)


def signed(response: Response) -> dict[str, Any]:
    assert response.status == 200, response.body
    answer = json.loads(response.body)
    assert set(answer) == {"encoding", "signature"}
    assert answer["encoding"] == "pkcs7"
    doc: dict[str, Any] = json.loads(base64.b64decode(answer["signature"]))
    return doc


ATTESTED_VERSIONS = [v for v in GENERAL_VERSIONS if v >= "2018-10-01"]


@pytest.mark.parametrize("version", ATTESTED_VERSIONS)
def test_fields_per_api_version(version: str) -> None:
    doc = signed(call(AttestedEndpoint(EchoSigner()), (("api-version", version), ("nonce", "n1"))))
    expected = {"nonce", "plan", "timeStamp", "vmId"}
    if version >= "2019-04-30":
        expected.add("subscriptionId")
    if version >= "2019-11-01":
        expected.add("sku")
    assert set(doc) == expected
    assert doc["nonce"] == "n1"
    assert doc["vmId"] == "02aab8a4-74ef-476e-8182-f6d2ba4166a6"
    assert doc["plan"] == {
        "name": "planName",
        "product": "planProduct",
        "publisher": "planPublisher",
    }


@pytest.mark.parametrize(
    ("version", "present"), [("2020-07-15", False), ("2020-09-01", True), ("2025-04-07", True)]
)
def test_license_type_from_2020_09_01_when_set(version: str, present: bool) -> None:
    snapshot = vm(licenseType="Windows_Server")
    doc = signed(
        call(AttestedEndpoint(EchoSigner()), (("api-version", version),), snapshot=snapshot)
    )
    assert ("licenseType" in doc) is present
    if present:
        assert doc["licenseType"] == "Windows_Server"


def test_license_type_absent_when_empty() -> None:
    doc = signed(call(AttestedEndpoint(EchoSigner()), (("api-version", "2025-04-07"),)))
    assert "licenseType" not in doc
    assert doc["sku"] == "22_04-lts-gen2"
    assert doc["subscriptionId"] == "8d10da13-8125-4ba9-a717-bf7490507b3d"


@pytest.mark.parametrize("version", [v for v in GENERAL_VERSIONS if v < "2018-10-01"])
def test_older_api_versions_get_the_api_version_error(version: str) -> None:
    response = call(AttestedEndpoint(EchoSigner()), (("api-version", version),))
    assert response.status == 400
    body = json.loads(response.body)
    assert body["error"].startswith("Bad request. api-version is invalid")
    assert body["newest-versions"] == list(NEWEST_VERSIONS)


@pytest.mark.parametrize(
    "query", [(), (("api-version", "latest"),), (("api-version", "2030-01-01"),)]
)
def test_missing_or_unknown_api_version(query: tuple[tuple[str, str], ...]) -> None:
    signer = EchoSigner()
    response = call(AttestedEndpoint(signer), query)
    assert response.status == 400
    assert "newest-versions" in json.loads(response.body)
    assert signer.calls == []


def test_timestamps_in_azure_format_with_six_hours_validity() -> None:
    doc = signed(call(AttestedEndpoint(EchoSigner()), (("api-version", "2021-02-01"),)))
    # 6: the validation sample runs 00:16:17 -> 06:16:17.
    assert doc["timeStamp"] == {
        "createdOn": "11/28/18 00:16:17 -0000",
        "expiresOn": "11/28/18 06:16:17 -0000",
    }


def test_validity_is_configurable() -> None:
    endpoint = AttestedEndpoint(EchoSigner(), validity=45)
    doc = signed(call(endpoint, (("api-version", "2021-02-01"),)))
    assert doc["timeStamp"] == {
        "createdOn": "11/28/18 00:16:17 -0000",
        "expiresOn": "11/28/18 00:17:02 -0000",
    }


def test_default_nonce_is_the_utc_time() -> None:
    doc = signed(call(AttestedEndpoint(EchoSigner()), (("api-version", "2021-02-01"),)))
    assert doc["nonce"] == "20181128-001617"
    empty = signed(
        call(AttestedEndpoint(EchoSigner()), (("api-version", "2021-02-01"), ("nonce", "")))
    )
    assert empty["nonce"] == "20181128-001617"


@pytest.mark.parametrize("nonce", ["1", "1234566766", "a" * 32, "AbC123xyz"])
def test_valid_nonces_are_signed_as_given(nonce: str) -> None:
    doc = signed(
        call(AttestedEndpoint(EchoSigner()), (("api-version", "2021-02-01"), ("nonce", nonce)))
    )
    assert doc["nonce"] == nonce


@pytest.mark.parametrize("nonce", ["a" * 33, "abc-123", "abc 123", "ñandú", "12.5", "a/b"])
def test_bad_nonce_is_a_400_with_a_clear_message(nonce: str) -> None:
    signer = EchoSigner()
    response = call(AttestedEndpoint(signer), (("api-version", "2021-02-01"), ("nonce", nonce)))
    assert response.status == 400
    body = json.loads(response.body)
    assert set(body) == {"error"}
    assert "nonce must be 1 to 32 alphanumeric characters" in body["error"]
    assert signer.calls == []


def test_signed_json_is_compact_sorted_utf8() -> None:
    signer = EchoSigner()
    call(
        AttestedEndpoint(signer),
        (("api-version", "2025-04-07"), ("nonce", "n")),
        snapshot=vm(vmId="é"),
    )
    content = signer.calls[0][0]
    doc = json.loads(content)
    assert (
        content
        == json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    )
    assert "é".encode() in content


def test_answer_is_not_cacheable_by_the_adapter_and_names_the_cloud() -> None:
    signer = EchoSigner()
    response = call(
        AttestedEndpoint(signer),
        (("api-version", "2021-02-01"),),
        snapshot=vm(azEnvironment="AzureChinaCloud"),
    )
    assert response.cacheable is False
    assert response.content_type == "application/json; charset=utf-8"
    assert signer.calls[0][1] == "AzureChinaCloud"


def test_text_format_is_refused() -> None:
    response = call(
        AttestedEndpoint(EchoSigner()), (("api-version", "2021-02-01"), ("format", "text"))
    )
    assert response.status == 400


def test_post_is_not_allowed() -> None:
    dispatcher = build_dispatcher([(PATH, AttestedEndpoint(EchoSigner()))])
    request = Request("POST", PATH, (("api-version", "2021-02-01"),), (("metadata", "true"),))
    assert dispatcher.handle(request, vm(), NOW).status == 405


def test_missing_metadata_header() -> None:
    dispatcher = build_dispatcher([(PATH, AttestedEndpoint(EchoSigner()))])
    request = Request("GET", PATH, (("api-version", "2021-02-01"),))
    assert dispatcher.handle(request, vm(), NOW).status == 400


# -- the short-lived answer cache (virtual clock) -----------------------------------------


def test_cache_reuses_an_answer_within_its_ttl() -> None:
    signer = EchoSigner()
    endpoint = AttestedEndpoint(signer, cache=SignedDocumentCache(5, 16))
    query = (("api-version", "2021-02-01"), ("nonce", "abc"))
    first = call(endpoint, query)
    again = call(endpoint, query, now=NOW + 4.9)
    assert again.body == first.body
    assert len(signer.calls) == 1
    later = call(endpoint, query, now=NOW + 5)
    assert len(signer.calls) == 2
    assert signed(later)["timeStamp"]["createdOn"] == "11/28/18 00:16:22 -0000"


def test_cache_key_holds_nonce_version_and_vm_revision() -> None:
    signer = EchoSigner()
    endpoint = AttestedEndpoint(signer, cache=SignedDocumentCache(60, 16))
    call(endpoint, (("api-version", "2021-02-01"), ("nonce", "a")))
    call(endpoint, (("api-version", "2021-02-01"), ("nonce", "b")))
    call(endpoint, (("api-version", "2025-04-07"), ("nonce", "a")))
    call(endpoint, (("api-version", "2021-02-01"), ("nonce", "a")), snapshot=vm(revision=2))
    assert len(signer.calls) == 4


def test_cache_is_bounded() -> None:
    cache = SignedDocumentCache(60, 3)
    endpoint = AttestedEndpoint(EchoSigner(), cache=cache)
    for i in range(10):
        call(endpoint, (("api-version", "2021-02-01"), ("nonce", f"n{i}")))
    assert len(cache) == 3


def test_cache_drops_expired_entries_on_insert() -> None:
    cache = SignedDocumentCache(5, 100)
    endpoint = AttestedEndpoint(EchoSigner(), cache=cache)
    for i in range(4):
        call(endpoint, (("api-version", "2021-02-01"), ("nonce", f"n{i}")), now=NOW + i * 10)
    assert len(cache) == 1


def test_cache_ttl_zero_signs_every_time() -> None:
    signer = EchoSigner()
    endpoint = AttestedEndpoint(signer, cache=SignedDocumentCache(0, 16))
    for _ in range(3):
        call(endpoint, (("api-version", "2021-02-01"), ("nonce", "a")))
    assert len(signer.calls) == 3


def test_cached_nonce_quirk_returns_the_first_nonce_until_expiry() -> None:
    # 6 / I-43938: the first call (or the first after expiry) gets its own nonce.
    endpoint = AttestedEndpoint(EchoSigner(), cache=SignedDocumentCache(30, 16, reuse_nonce=True))
    first = signed(call(endpoint, (("api-version", "2021-02-01"), ("nonce", "first"))))
    second = signed(
        call(endpoint, (("api-version", "2021-02-01"), ("nonce", "second")), now=NOW + 10)
    )
    after = signed(
        call(endpoint, (("api-version", "2021-02-01"), ("nonce", "third")), now=NOW + 31)
    )
    assert (first["nonce"], second["nonce"], after["nonce"]) == ("first", "first", "third")


def test_quirk_is_off_by_default() -> None:
    endpoint = AttestedEndpoint(EchoSigner(), cache=SignedDocumentCache(30, 16))
    call(endpoint, (("api-version", "2021-02-01"), ("nonce", "first")))
    doc = signed(call(endpoint, (("api-version", "2021-02-01"), ("nonce", "second"))))
    assert doc["nonce"] == "second"


# -- the default nonce, formatted without time modules in core ----------------------------
@given(st.integers(min_value=0, max_value=4_102_444_800))
def test_default_nonce_matches_strftime(epoch: int) -> None:
    assert default_nonce(epoch) == time.strftime("%Y%m%d-%H%M%S", time.gmtime(epoch))

"""GET /metadata/attested/document (docs/attested.md).

The core builds the signed JSON for the requested api-version and hands its bytes to a
signer port (crypto/ holds the real PKCS#7 signing); it never touches keys itself.
Signing costs about a millisecond, so finished answers are kept for a short time per
(VM, VM revision, api-version, nonce) in a bounded cache that this module keeps pure by
taking `now` from the caller.
"""

from __future__ import annotations

import base64
import json
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import ClassVar, Final, Protocol

from openimds.core.endpoint import BaseEndpoint, require_version
from openimds.core.errors import AKA, BadRequest
from openimds.core.formats import parse_format, to_json
from openimds.core.http import Request, Response
from openimds.core.instance import Node
from openimds.core.timestamps import azure_time, compact
from openimds.core.versions import ATTESTED_MIN
from openimds.core.vm import VmSnapshot

# Azure's REST spec (swagger) allows up to 32 alphanumeric characters.
NONCE_PATTERN: Final = re.compile(r"[A-Za-z0-9]{1,32}")
DEFAULT_VALIDITY: Final[int] = 6 * 3600  # as seen on Azure; not documented

# The api-version each signed field appeared in (docs/attested.md).
SUBSCRIPTION_ID_SINCE: Final[str] = "2019-04-30"
SKU_SINCE: Final[str] = "2019-11-01"
LICENSE_TYPE_SINCE: Final[str] = "2020-09-01"


class InvalidNonce(BadRequest):
    # Azure documents no error for a bad nonce; the wording is ours (docs/attested.md).
    def __init__(self) -> None:
        super().__init__(
            f"Bad request. The nonce must be 1 to 32 alphanumeric characters (A-Z, a-z, 0-9). {AKA}"
        )


class DocumentSigner(Protocol):
    """Signs the document for a VM of the given cloud; returns DER CMS SignedData."""

    def sign(self, content: bytes, az_environment: str) -> bytes: ...


def default_nonce(epoch: float) -> str:
    """Without a nonce IMDS puts the current UTC time there as YYYYMMDD-HHMMSS."""
    return compact(epoch)


def parse_nonce(value: str | None, now: float) -> str:
    # An empty `nonce=` counts as no nonce (Azure does not say; docs/attested.md).
    if value is None or value == "":
        return default_nonce(now)
    if NONCE_PATTERN.fullmatch(value) is None:
        raise InvalidNonce()
    return value


def _text(compute: Mapping[str, Node], key: str) -> str:
    value = compute.get(key, "")
    return value if isinstance(value, str) else ""


def signed_fields(
    compute: Mapping[str, Node], api_version: str, nonce: str, now: float, validity: int
) -> dict[str, object]:
    """The signed document of an api-version: each field from the version that added it."""
    plan = compute.get("plan")
    plan_map = plan if isinstance(plan, Mapping) else {}
    doc: dict[str, object] = {
        "nonce": nonce,
        "plan": {k: _text(plan_map, k) for k in ("name", "product", "publisher")},
        "timeStamp": {"createdOn": azure_time(now), "expiresOn": azure_time(now + validity)},
        "vmId": _text(compute, "vmId"),
    }
    if api_version >= SUBSCRIPTION_ID_SINCE:
        doc["subscriptionId"] = _text(compute, "subscriptionId")
    if api_version >= SKU_SINCE:
        doc["sku"] = _text(compute, "sku")
    # Azure's docs: licenseType only for Azure Hybrid Benefit VMs, i.e. when it has a value.
    license_type = _text(compute, "licenseType")
    if api_version >= LICENSE_TYPE_SINCE and license_type:
        doc["licenseType"] = license_type
    return doc


def signed_content(doc: Mapping[str, object]) -> bytes:
    # Compact UTF-8 JSON; keys in alphabetical order, as in Azure's 2020 sample.
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


CacheKey = tuple[str, int, str, str]


class SignedDocumentCache:
    """Finished answers for `ttl` seconds, at most `size` of them (oldest dropped first).

    With `reuse_nonce` the nonce is left out of the key, which reproduces Azure's quirk:
    within the window every caller gets the first document, with its nonce. Azure's docs warn
    that "a previously cached nonce may be returned" (docs/attested.md).
    """

    def __init__(self, ttl: float, size: int, *, reuse_nonce: bool = False) -> None:
        self.ttl = ttl
        self.size = size
        self.reuse_nonce = reuse_nonce
        self._entries: OrderedDict[CacheKey, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def key(self, vm: VmSnapshot, api_version: str, nonce: str) -> CacheKey:
        return (vm.id, vm.revision, api_version, "" if self.reuse_nonce else nonce)

    def get(self, key: CacheKey, now: float) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry[0] or now < entry[0] - self.ttl:  # expired, or the clock went back
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: CacheKey, body: bytes, now: float) -> None:
        if self.ttl <= 0:
            return
        self._entries.pop(key, None)
        self._entries[key] = (now + self.ttl, body)
        # Entries share one TTL, so the oldest insert is always the first to expire.
        while self._entries:
            first = next(iter(self._entries.values()))
            if first[0] > now and len(self._entries) <= self.size:
                break
            self._entries.popitem(last=False)


class AttestedEndpoint(BaseEndpoint):
    name: ClassVar[str] = "attested"

    def __init__(
        self,
        signer: DocumentSigner,
        *,
        validity: int = DEFAULT_VALIDITY,
        cache: SignedDocumentCache | None = None,
    ) -> None:
        self.signer = signer
        self.validity = validity
        self.cache = cache if cache is not None else SignedDocumentCache(0, 1)

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        version = require_version(request, ATTESTED_MIN)
        parse_format(request.param("format"), allow_text=False)  # json is its only format
        nonce = parse_nonce(request.param("nonce"), now)
        key = self.cache.key(vm, version, nonce)
        body = self.cache.get(key, now)
        if body is None:
            body = self.sign(vm, version, nonce, now)
            self.cache.put(key, body, now)
        # Time-dependent: never in the adapter's per-revision byte cache.
        return Response(200, body, cacheable=False)

    def sign(self, vm: VmSnapshot, version: str, nonce: str, now: float) -> bytes:
        doc = signed_fields(vm.compute, version, nonce, now, self.validity)
        der = self.signer.sign(signed_content(doc), _text(vm.compute, "azEnvironment"))
        signature = base64.b64encode(der).decode("ascii")
        return to_json({"encoding": "pkcs7", "signature": signature})

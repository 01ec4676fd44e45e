"""The managed-identity endpoints (docs/identity.md): /metadata/identity/oauth2/token and
/metadata/identity/info.

Selection rules, applied in this order:
1. At most one of client_id, object_id, msi_res_id (alias mi_res_id); two -> invalid_request.
2. A selector names an identity of the VM (ids compare case-insensitively, as Entra and
   ARM ids do); system-assigned may be named too. No match -> "Identity not found".
3. No selector: the system-assigned identity; else the only user-assigned one; else, with
   several user-assigned, Azure's "Multiple user assigned identities exist..." error.
4. A VM with no identity at all -> "Identity not found" (Azure's live answer, from a public issue).

Every bad request is a 400: the Azure SDKs retry 404/410/429/5xx and would hang.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from openimds.core.endpoint import BaseEndpoint, require_version
from openimds.core.errors import (
    ImdsError,
    MethodNotAllowed,
    MissingMetadataHeader,
    ProxyRefused,
    TooManyRequests,
    UnknownCaller,
)
from openimds.core.formats import to_json
from openimds.core.http import Request, Response
from openimds.core.identity.tokens import (
    CacheKey,
    IdSource,
    Issuer,
    ManagedIdentity,
    TokenCache,
    TokenPolicy,
    TokenSigner,
    echo_fields,
    render,
)
from openimds.core.versions import IDENTITY_MIN
from openimds.core.vm import VmSnapshot

# The one wording Azure's managed-identity docs give for any malformed token request.
MALFORMED = (
    "The request is missing a required parameter, includes an invalid parameter value, "
    "includes a parameter more than once, or is otherwise malformed."
)
IdField = Literal["client", "object", "resource"]
# Query parameter -> the id it names. Each token source has its own table (the App
# Service, Arc and Azure ML ones are in their modules); this is the VM endpoint's.
Selectors = Mapping[str, IdField]
SELECTORS: Selectors = {
    "client_id": "client",
    "object_id": "object",
    "msi_res_id": "resource",
    "mi_res_id": "resource",
}
PLAN_LIMIT = 1024  # remembered query strings; odd ones cannot grow it without bound


class IdentityError(ImdsError):
    """Errors of the identity endpoints: `{"error": code, "error_description": text}`."""

    status = 400
    code: ClassVar[str] = "invalid_request"
    message = MALFORMED

    def payload(self) -> dict[str, object]:
        return {"error": self.code, "error_description": self.text}


class MalformedRequest(IdentityError):
    """Missing resource, bad api-version, two selectors, bad bypass_cache: the managed-identity
    docs word none of these apart, so all get their one `invalid_request` text."""


class IdentityNotFound(IdentityError):
    # Azure's live answer, as quoted in public issues.
    message = "Identity not found"


class MultipleIdentities(IdentityError):
    # Azure's live answer, as quoted in a public issue.
    message = (
        "Multiple user assigned identities exist, please specify the clientId / resourceId "
        "of the identity in the token request"
    )


class IdentityHeaderMissing(IdentityError):
    # Code and text from the error table of Azure's managed-identity docs.
    code = "bad_request_102"
    message = "Required metadata header not specified"


class IdentityForbidden(IdentityError):
    # A signed proxy's identity that does not hold (docs/fleet.md); ours, not Azure's. 403
    # is not a status the SDKs retry.
    status = 403


class IdentityThrottled(IdentityError):
    # Azure documents no wording (ours); the code is from the REST spec's error enum.
    status = 429
    code = "too_many_requests"
    message = "Too many requests. The managed identity endpoint allows 20 requests per second"


class IdentityMethodNotAllowed(IdentityError):
    # Azure's REST spec lists method_not_allowed among the identity error codes; Allow lists
    # the methods.
    status = 405
    code = "method_not_allowed"

    def __init__(self, allowed: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.allowed = allowed

    def extra_headers(self) -> tuple[tuple[str, str], ...]:
        return (("Allow", ", ".join(self.allowed)),)


@dataclass(frozen=True, slots=True)
class VmIdentities:
    tenant_id: str
    system: ManagedIdentity | None = None
    user: tuple[ManagedIdentity, ...] = ()

    @property
    def all(self) -> tuple[ManagedIdentity, ...]:
        return ((self.system,) if self.system else ()) + self.user


class IdentityDirectory(Protocol):
    """The identities of a VM with every id filled in (generated ones are the shell's)."""

    def identities(self, vm: VmSnapshot) -> VmIdentities | None: ...


def select(
    identities: VmIdentities | None, request: Request, selectors: Selectors = SELECTORS
) -> ManagedIdentity:
    """The identity a token request asks for, by the rules at the top of this module;
    `selectors` names the parameters that select one (the VM endpoint's by default)."""
    chosen = [(name, value) for name in selectors if (value := request.param(name)) is not None]
    if len(chosen) > 1 or any(not value for _, value in chosen):
        raise MalformedRequest()
    if identities is None or not identities.all:
        raise IdentityNotFound()
    if chosen:
        name, value = chosen[0]
        return _match(identities, selectors[name], value)
    if identities.system is not None:
        return identities.system
    if len(identities.user) == 1:
        return identities.user[0]
    raise MultipleIdentities()


def _match(identities: VmIdentities, field: IdField, value: str) -> ManagedIdentity:
    wanted = value.strip().lower()
    for identity in identities.all:
        if field == "client":
            candidate = identity.client_id
        elif field == "object":
            candidate = identity.object_id
        else:
            candidate = identity.resource_id
        if candidate.lower() == wanted:
            return identity
    raise IdentityNotFound()


def require_identity_version(request: Request) -> str:
    """Any general api-version from 2018-02-01 on, else invalid_request: Azure gives no list
    for this endpoint, so we infer one (docs/identity.md). `format` may only be json: the
    identity API has no other format."""
    version = require_version(request, IDENTITY_MIN, error=MalformedRequest)
    if request.param("format") not in (None, "json"):
        raise MalformedRequest()
    return version


class IdentityBase(BaseEndpoint):
    name: ClassVar[str] = "identity"  # one budget for both paths (Azure: 20 requests/s)

    def __init__(self, directory: IdentityDirectory) -> None:
        self.directory = directory

    def own_error(self, error: ImdsError) -> ImdsError:
        return identity_error(error)


def identity_error(error: ImdsError) -> ImdsError:
    """The shared rules' errors in the identity shape, and never with a status the SDKs
    retry: a caller no VM claims has no identity (400, not 404). Errors already in
    the identity shape stay as they are."""
    if isinstance(error, IdentityError):
        return error
    if isinstance(error, MissingMetadataHeader):
        return IdentityHeaderMissing()  # the managed-identity docs: bad_request_102
    if isinstance(error, TooManyRequests):
        return IdentityThrottled()
    if isinstance(error, UnknownCaller):
        return IdentityNotFound()
    if isinstance(error, ProxyRefused):
        return IdentityForbidden(error.text)
    if isinstance(error, MethodNotAllowed):
        return IdentityMethodNotAllowed(error.allowed, error.text)
    # X-Forwarded-For, a repeated parameter: the managed-identity docs call these
    # invalid_request.
    return MalformedRequest()


class TokenEndpoint(IdentityBase):
    """GET /metadata/identity/oauth2/token. The body carries a countdown (`expires_in`) in
    whole seconds, so the HTTP adapter may reuse its bytes until the next second, and never
    past the moment the token cache would mint a new token; `bypass_cache=true` answers
    are never reused."""

    def __init__(
        self,
        directory: IdentityDirectory,
        signer: TokenSigner,
        cache: TokenCache,
        policy: TokenPolicy,
        new_id: IdSource,
    ) -> None:
        super().__init__(directory)
        # The one issuer (keys, cache, policy) every token source of the server shares.
        self.issuer = Issuer(signer, cache, policy, new_id)
        self.policy = policy
        self._plans: dict[tuple[str, int, tuple[tuple[str, str], ...]], _Plan] = {}

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        # The same query string from the same VM revision always selects the same
        # identity: remember that, so a cached-token request only formats bytes.
        memo = (vm.id, vm.revision, request.query)
        plan = self._plans.get(memo)
        if plan is None:
            plan = self._plan(request, vm)
            if len(self._plans) >= PLAN_LIMIT:
                self._plans.clear()
            self._plans[memo] = plan
        token, minted = self.issuer.token(plan.key, plan.identity, plan.tenant, now, plan.bypass)
        if plan.bypass:
            # A new token replaced the cached one, which earlier answers still carry.
            return Response(200, render(token, now, plan.echo), drops_cached=minted)
        until = min(int(now) + 1, token.expires_on - self.policy.refresh_margin)
        return Response(200, render(token, now, plan.echo), cacheable=True, valid_until=until)

    def _plan(self, request: Request, vm: VmSnapshot) -> _Plan:
        require_identity_version(request)
        resource = request.param("resource")
        if not resource:
            raise MalformedRequest()
        bypass = request.param("bypass_cache")
        if bypass is not None and bypass != "true":  # the only value Azure documents
            raise MalformedRequest()
        identities = self.directory.identities(vm)
        identity = select(identities, request)
        tenant = identities.tenant_id if identities is not None else ""
        key = (vm.id, identity.client_id, resource)
        return _Plan(identity, tenant, key, bypass is not None, echo_request(request))


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a valid token request asks for, worked out once per query string."""

    identity: ManagedIdentity
    tenant: str
    key: CacheKey
    bypass: bool
    echo: bytes


def echo_request(request: Request, selectors: Selectors = SELECTORS) -> bytes:
    """The selector the request used, echoed as Azure's REST spec shows: object_id, or a
    resource id under today's name msi_res_id (the older mi_res_id is the same selector).
    Only parameters the source honours are echoed: an echo confirms the identity."""
    fields: dict[str, str] = {}
    for name, field in selectors.items():
        value = request.param(name)
        if value is None:
            continue
        if field == "object":
            fields.setdefault("object_id", value)
        elif field == "resource":
            fields.setdefault("msi_res_id", value)
    return echo_fields(fields) if fields else b""


class IdentityInfoEndpoint(IdentityBase):
    """GET /metadata/identity/info -> {"tenantId": ...} (only Azure's REST spec has it)."""

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        require_identity_version(request)
        identities = self.directory.identities(vm)
        if identities is None or not identities.all:
            raise IdentityNotFound()
        # A pure function of (request, VM revision): the adapter may keep the bytes.
        return Response(200, to_json({"tenantId": identities.tenant_id}), cacheable=True)

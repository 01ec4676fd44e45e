"""What the token sources beside the VM endpoint share (docs/identity.md, "Every token
source").

Azure Arc, App Service, Azure ML, Cloud Shell and Service Fabric each speak their own
protocol on their own listener; each has its endpoint in its own module (`arc_api`,
`appservice_api`, `cloudshell_api`, `servicefabric_api`). What they share is here:

- one `Issuer` (core/identity/tokens.py) for every source: the same keys, issuer, claims and token
  cache as the VM endpoint, so every source hands out the same token for the same
  (VM, identity, resource);
- the identities of the VM a listener speaks for, chosen with `identity_api.select` and
  the source's own table of selector parameters;
- one place where the errors the rules and the selection raise (identity not found, a
  malformed request, a method, the throttle) become the source's own error shape:
  `SourceEndpoint.word`;
- secrets compared in constant time.

Token answers of these sources are never cacheable: most depend on a secret header, which
the listener's byte cache does not key on (the listeners run without it).
"""

from __future__ import annotations

import hmac
from typing import ClassVar, Literal

from openimds.core.endpoint import BaseEndpoint
from openimds.core.errors import (
    ImdsError,
    MethodNotAllowed,
    MissingMetadataHeader,
    TooManyRequests,
    UnknownCaller,
    WordedError,
)
from openimds.core.http import Request, Response
from openimds.core.identity.identity_api import (
    IdentityDirectory,
    IdentityMethodNotAllowed,
    IdentityNotFound,
    IdentityThrottled,
    MultipleIdentities,
    Selectors,
    select,
)
from openimds.core.identity.tokens import IssuedToken, Issuer
from openimds.core.vm import VmSnapshot

# What went wrong, whatever the source; each source words it in its own shape.
Problem = Literal["not_found", "multiple", "malformed", "method", "throttled", "metadata"]


def problem_of(error: ImdsError) -> Problem:
    """The kind of a rule's or the selection's error."""
    if isinstance(error, IdentityNotFound | UnknownCaller):
        return "not_found"
    if isinstance(error, MultipleIdentities):
        return "multiple"
    if isinstance(error, MethodNotAllowed | IdentityMethodNotAllowed):
        return "method"
    if isinstance(error, TooManyRequests | IdentityThrottled):
        return "throttled"
    if isinstance(error, MissingMetadataHeader):
        return "metadata"
    return "malformed"


def allowed_methods(error: ImdsError) -> tuple[tuple[str, str], ...]:
    """The Allow header a 405 carries, in any shape."""
    if isinstance(error, MethodNotAllowed | IdentityMethodNotAllowed):
        return error.extra_headers()
    return ()


def secret_matches(given: str | None, expected: str) -> bool:
    """A secret header checked in constant time (a wrong guess learns nothing from the
    time the answer takes). An empty expected secret matches nothing."""
    if given is None or not expected:
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def coded_error(
    status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()
) -> WordedError:
    """The `{"error": {"code", "message"}}` shape of Cloud Shell and Service Fabric."""
    return WordedError(status, {"error": {"code": code, "message": message}}, headers)


class SourceEndpoint(BaseEndpoint):
    """A token endpoint of a source other than the VM endpoint. Subclasses give the
    methods, the selector table, `answer` and `word`."""

    # The identity budget (20 requests/s per VM) is shared with the VM endpoint.
    name: ClassVar[str] = "identity"
    selectors: ClassVar[Selectors] = {}

    def __init__(self, directory: IdentityDirectory, issuer: Issuer) -> None:
        self.directory = directory
        self.issuer = issuer

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        try:
            return self.answer(request, vm, now)
        except ImdsError as error:
            raise self.own_error(error) from None

    def own_error(self, error: ImdsError) -> ImdsError:
        if isinstance(error, WordedError):
            return error
        return self.word(problem_of(error), error)

    def answer(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        raise NotImplementedError

    def word(self, problem: Problem, error: ImdsError) -> ImdsError:
        raise NotImplementedError

    def issue(
        self,
        request: Request,
        vm: VmSnapshot,
        now: float,
        resource: str,
        selectors: Selectors | None = None,
    ) -> IssuedToken:
        """The token for the identity the request selects (by `selectors`, the class's
        table unless given), from the shared cache or newly minted."""
        identities = self.directory.identities(vm)
        table = self.selectors if selectors is None else selectors
        identity = select(identities, request, table)
        tenant = identities.tenant_id if identities is not None else ""
        token, _ = self.issuer.token((vm.id, identity.client_id, resource), identity, tenant, now)
        return token

"""The dispatcher: request rules shared by every endpoint, then routing.

Order of checks, where Azure documents none (docs/compatibility.md):
1. X-Forwarded-For present -> 400 (proxied requests are refused).
2. `Metadata: true` missing (compared case-insensitively) -> 400, in the endpoint's shape.
3. A query parameter given twice -> 400, in the endpoint's shape.
4. A known endpoint: method not allowed -> 405, then the endpoint's own checks.
5. An unknown path: api-version checked first (live Azure answers a bare /metadata with
   the api-version error), then 404.

A token source whose clients send no `Metadata` header (App Service, Azure ML, Service
Fabric: docs/identity.md) builds its dispatcher with `metadata_header=False`, which skips
rule 2; its endpoints check their own secret header instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from openimds.core.endpoint import BaseEndpoint, Endpoint, require_version
from openimds.core.errors import (
    DuplicateParameter,
    ForwardedRequest,
    ImdsError,
    MethodNotAllowed,
    MissingMetadataHeader,
    NotFound,
    error_response,
)
from openimds.core.http import Request, Response
from openimds.core.versions import GENERAL_VERSIONS
from openimds.core.vm import VmSnapshot

_FALLBACK = BaseEndpoint()


class Dispatcher:
    def __init__(
        self, routes: Iterable[tuple[str, Endpoint]], *, metadata_header: bool = True
    ) -> None:
        self.metadata_header = metadata_header
        self._routes: dict[tuple[str, ...], Endpoint] = {
            tuple(s for s in path.split("/") if s): endpoint for path, endpoint in routes
        }

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(self._routes.values())

    def route(self, request: Request) -> Endpoint | None:
        """The endpoint a path belongs to, trailing slash or not (Azure does not say; we ignore
        a trailing slash, docs/compatibility.md)."""
        segments = request.segments()
        endpoint = self._routes.get(segments)
        if endpoint is not None:
            return endpoint
        for length in range(len(segments) - 1, 1, -1):
            endpoint = self._routes.get(segments[:length])
            if endpoint is not None:
                return endpoint if endpoint.subpaths else None
        return None

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        return self.dispatch(request, self.route(request), vm, now)

    def dispatch(
        self, request: Request, endpoint: Endpoint | None, vm: VmSnapshot, now: float
    ) -> Response:
        """Answer a request already routed (`route(request)`): the listener routes once to
        pick the budget and passes the endpoint on."""
        try:
            rule_error = shared_rule_error(request, endpoint, self.metadata_header)
            if rule_error is not None:
                raise (endpoint or _FALLBACK).own_error(rule_error)
            if endpoint is None:
                require_version(request, GENERAL_VERSIONS[0])
                raise NotFound(f"API isn't found: {_where(request)}")
            return endpoint.handle(request, vm, now)
        except ImdsError as error:
            return error_response(error)


def shared_rule_error(
    request: Request, endpoint: Endpoint | None, metadata_header: bool = True
) -> ImdsError | None:
    """The first rule every endpoint shares that the request breaks, in the order above."""
    if request.header("x-forwarded-for") is not None:
        return ForwardedRequest()
    if metadata_header and not has_metadata_header(request):
        return MissingMetadataHeader()
    seen: set[str] = set()
    for key, _ in request.query:
        if key in seen:
            return DuplicateParameter(key)
        seen.add(key)
    if endpoint is not None and request.method not in endpoint.methods:
        return MethodNotAllowed(endpoint.methods, f"Http method isn't allowed: {_where(request)}")
    return None


def _where(request: Request) -> str:
    return f'Path = "{request.path}", Method = "{request.method}"'


def has_metadata_header(request: Request) -> bool:
    # WALinuxAgent sends `Metadata: True`; compare case-insensitively.
    value = request.header("metadata")
    return value is not None and value.strip().lower() == "true"

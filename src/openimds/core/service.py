"""The dispatcher: request rules shared by every endpoint, then routing (sections 1, 5).

Order of checks, where Azure documents none (docs/compatibility.md):
1. X-Forwarded-For present -> 400 (proxied requests are refused).
2. `Metadata: true` missing (compared case-insensitively) -> 400, in the endpoint's shape.
3. A query parameter given twice -> 400, in the endpoint's shape.
4. A known endpoint: method not allowed -> 405, then the endpoint's own checks.
5. An unknown path: api-version checked first (PR289: bare /metadata answers with the
   api-version error), then 404.
"""

from __future__ import annotations

from collections.abc import Iterable

from openimds.core.endpoint import BaseEndpoint, Endpoint, require_version
from openimds.core.errors import (
    ForwardedRequest,
    ImdsError,
    MethodNotAllowed,
    NotFound,
    error_response,
)
from openimds.core.http import Request, Response
from openimds.core.inventory import VmSnapshot
from openimds.core.versions import GENERAL_VERSIONS

_FALLBACK = BaseEndpoint()


class MetadataService:
    def __init__(self, routes: Iterable[tuple[str, Endpoint]]) -> None:
        self._routes: dict[tuple[str, ...], Endpoint] = {
            tuple(s for s in path.split("/") if s): endpoint for path, endpoint in routes
        }

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(self._routes.values())

    def route(self, request: Request) -> Endpoint | None:
        """The endpoint a path belongs to, trailing slash or not (INFERRED)."""
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
        endpoint = self.route(request)
        try:
            return self._dispatch(request, endpoint, vm, now)
        except ImdsError as error:
            return error_response(error)

    def _dispatch(
        self, request: Request, endpoint: Endpoint | None, vm: VmSnapshot, now: float
    ) -> Response:
        if request.header("x-forwarded-for") is not None:
            raise ForwardedRequest()
        if not has_metadata_header(request):
            raise (endpoint or _FALLBACK).missing_header()
        _reject_duplicates(request, endpoint or _FALLBACK)
        if endpoint is None:
            require_version(request, GENERAL_VERSIONS[0])
            raise NotFound(
                f'API isn\'t found: Path = "{request.path}", Method = "{request.method}"'
            )
        if request.method not in endpoint.methods:
            raise MethodNotAllowed(
                endpoint.methods,
                f'Http method isn\'t allowed: Path = "{request.path}", Method = "{request.method}"',
            )
        return endpoint.handle(request, vm, now)


def has_metadata_header(request: Request) -> bool:
    # WALinuxAgent sends `Metadata: True` (13); compare case-insensitively.
    value = request.header("metadata")
    return value is not None and value.strip().lower() == "true"


def _reject_duplicates(request: Request, endpoint: Endpoint | BaseEndpoint) -> None:
    seen: set[str] = set()
    for key, _ in request.query:
        if key in seen:
            raise endpoint.duplicate_parameter(key)
        seen.add(key)

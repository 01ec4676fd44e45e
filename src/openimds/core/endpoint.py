"""What every endpoint shares: the contract the dispatcher calls, and version checks."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import ClassVar, Protocol

from openimds.core.errors import ImdsError, InvalidApiVersion
from openimds.core.http import Request, Response
from openimds.core.versions import GENERAL_SET
from openimds.core.vm import VmSnapshot


class Endpoint(Protocol):
    """One IMDS API. `subpaths` says whether deeper paths (route filters) belong to it."""

    methods: ClassVar[tuple[str, ...]]
    subpaths: ClassVar[bool]
    name: ClassVar[str]
    # The effect types `handle` may return in `Response.effects`; the server checks at
    # start that a feature handles each of them.
    effects: ClassVar[tuple[type, ...]]

    def own_error(self, error: ImdsError) -> ImdsError:
        """An error of the shared rules (missing header, X-Forwarded-For, duplicate
        parameter, method, throttle, unknown caller), worded as this endpoint answers."""
        ...

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response: ...


class BaseEndpoint:
    """Defaults for an endpoint: GET only, no route filters, the shared errors as they are."""

    methods: ClassVar[tuple[str, ...]] = ("GET",)
    subpaths: ClassVar[bool] = False
    name: ClassVar[str] = "unknown"
    effects: ClassVar[tuple[type, ...]] = ()

    def own_error(self, error: ImdsError) -> ImdsError:
        return error


def require_version(
    request: Request,
    minimum: str,
    allowed: Collection[str] = GENERAL_SET,
    error: Callable[[], ImdsError] = InvalidApiVersion,
) -> str:
    """The one check of an endpoint's api-version: the request's version if it is in
    `allowed` and not older than `minimum`; otherwise `error` (by default Azure's
    api-version error, whose `newest-versions` tells the client what to use: one body
    for a missing, unknown or unsupported version). ISO dates order as strings."""
    version = request.param("api-version")
    if version is None or version not in allowed or version < minimum:
        raise error()
    return version

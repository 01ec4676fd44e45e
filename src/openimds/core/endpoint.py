"""What every endpoint shares: the contract the dispatcher calls, and version checks."""

from __future__ import annotations

from collections.abc import Collection
from typing import ClassVar, Protocol

from openimds.core.errors import (
    DuplicateParameter,
    ImdsError,
    InvalidApiVersion,
    MissingMetadataHeader,
    TooManyRequests,
    UnknownCaller,
)
from openimds.core.http import Request, Response
from openimds.core.inventory import VmSnapshot
from openimds.core.versions import GENERAL_SET


class Endpoint(Protocol):
    """One IMDS API. `subpaths` says whether deeper paths (route filters) belong to it."""

    methods: ClassVar[tuple[str, ...]]
    subpaths: ClassVar[bool]
    name: ClassVar[str]

    def missing_header(self) -> ImdsError: ...

    def throttled(self) -> ImdsError: ...

    def duplicate_parameter(self, name: str) -> ImdsError: ...

    def unknown_caller(self) -> ImdsError: ...

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response: ...


class BaseEndpoint:
    """Defaults for an endpoint: GET only, no route filters, the general header error."""

    methods: ClassVar[tuple[str, ...]] = ("GET",)
    subpaths: ClassVar[bool] = False
    name: ClassVar[str] = "unknown"

    def missing_header(self) -> ImdsError:
        return MissingMetadataHeader()

    def throttled(self) -> ImdsError:
        return TooManyRequests()

    def duplicate_parameter(self, name: str) -> ImdsError:
        return DuplicateParameter(name)

    def unknown_caller(self) -> ImdsError:
        """Fleet mode, a source no VM claims: 404 in Azure's shape ("no metadata here")."""
        return UnknownCaller()


def require_version(request: Request, minimum: str, allowed: Collection[str] = GENERAL_SET) -> str:
    """The request's api-version if it is known and new enough for this endpoint;
    otherwise Azure's api-version error, whose `newest-versions` tells the client what
    to use (2.5: one body for missing, unknown and unsupported)."""
    version = request.param("api-version")
    if version is None or version not in allowed or version < minimum:
        raise InvalidApiVersion()
    return version

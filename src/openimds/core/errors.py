"""The one catalogue of IMDS errors, and the one function that turns them into responses.

Bodies follow Azure's documentation and live answers quoted in public issues; where Azure's
wording is undocumented the choice is written down in docs/compatibility.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar

from openimds.core.http import JSON, Response
from openimds.core.versions import NEWEST_VERSIONS

AKA: str = "For more information refer to aka.ms/azureimds"


class ImdsError(Exception):
    """Base of every error the core raises; knows its status and Azure's body."""

    # A class default; an error whose status is data (a source's catalogue) sets its own.
    status: int = 500
    message: ClassVar[str] = "Internal server error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.text = message or self.message

    def payload(self) -> dict[str, object]:
        return {"error": self.text}

    def extra_headers(self) -> tuple[tuple[str, str], ...]:
        return ()


class BadRequest(ImdsError):
    status = 400
    message = "Bad request. " + AKA


class InvalidApiVersion(BadRequest):
    # Azure's current service answers a missing and an unknown version with this one message.
    message = "Bad request. api-version is invalid or was not specified in the request. " + AKA

    def payload(self) -> dict[str, object]:
        return {"error": self.text, "newest-versions": list(NEWEST_VERSIONS)}


class MissingMetadataHeader(BadRequest):
    # Azure's live answer, as quoted in a public issue in 2022.
    message = "Bad request: . Required metadata header not specified"


class ForwardedRequest(BadRequest):
    # Azure refuses proxied requests (X-Forwarded-For) but documents no body: the wording is ours.
    message = "Bad request. Requests with an X-Forwarded-For header are not allowed. " + AKA


class DuplicateParameter(BadRequest):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"Bad request. Query parameter '{name}' is specified more than once. {AKA}"
        )


class LeafNeedsText(BadRequest):
    # A leaf answers only with format=text (Azure's docs, and a live answer in a public issue);
    # the status is Azure's, the wording ours (docs/compatibility.md).
    message = "Bad request. The requested element is a leaf node; use format=text. " + AKA


class UnsupportedFormat(BadRequest):
    def __init__(self, value: str) -> None:
        super().__init__(f"Bad request. Format '{value}' is not supported for this request. {AKA}")


class NotFound(ImdsError):
    status = 404
    message = "Not found"


class MethodNotAllowed(ImdsError):
    status = 405
    message = "Method not allowed"

    def __init__(self, allowed: tuple[str, ...], message: str | None = None) -> None:
        super().__init__(message)
        self.allowed = allowed

    def extra_headers(self) -> tuple[tuple[str, str], ...]:
        return (("Allow", ", ".join(self.allowed)),)


class TooManyRequests(ImdsError):
    status = 429
    message = "Too many requests"


class Unavailable(ImdsError):
    # A change (a scheduled-event approval) the state store could not keep: it is not
    # acknowledged, so the client retries. Azure documents no such answer: the status and
    # wording are ours (docs/reliability.md).
    status = 503
    message = "Service unavailable. The request could not be saved; retry later. " + AKA


class UnknownCaller(ImdsError):
    # Fleet mode: a source no VM claims. 404 in Azure's shape so it reads as "no metadata".
    status = 404
    message = "Not found. No virtual machine is registered for this caller"


class ProxyRefused(ImdsError):
    """A request whose proxy identity headers are missing, forged or not validly signed.
    403: the caller is known to be wrong, unlike an unknown caller's 404; `reason` is a
    short slug for the metrics."""

    status = 403
    # Ours: Azure has no proxy (docs/fleet.md). 403, as OpenStack answers a bad signature.
    message = "Forbidden. The proxy identity headers are missing or not validly signed"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"Forbidden. {detail}")
        self.reason = reason


class WordedError(ImdsError):
    """An error in a token source's own shape (App Service, Service Fabric, ...): its
    status, body and headers given whole by the source's module."""

    def __init__(
        self,
        status: int,
        body: Mapping[str, object],
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(json.dumps(body))
        self.status = status
        self.body = body
        self.headers = headers

    def payload(self) -> dict[str, object]:
        return dict(self.body)

    def extra_headers(self) -> tuple[tuple[str, str], ...]:
        return self.headers


def error_response(error: ImdsError) -> Response:
    """The single place where an error becomes bytes on the wire."""
    body = json.dumps(error.payload(), separators=(",", ":")).encode()
    return Response(error.status, body, JSON, error.extra_headers(), cacheable=True)

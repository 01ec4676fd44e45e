"""App Service / Functions and Azure ML token endpoints (docs/identity.md; spec
managed-identity-sources 2.4, 2.5).

App Service answers two protocols on one endpoint, chosen by api-version, as Azure does
(IDENTITY_ENDPOINT and MSI_ENDPOINT name the same URL, IDENTITY_HEADER and MSI_SECRET the
same secret):

- 2019-08-01: header X-IDENTITY-HEADER; selectors client_id, principal_id or object_id,
  mi_res_id; expires_on in epoch seconds, as a string; client_id in the body.
- 2017-09-01: header `secret`; selector clientid; expires_on as a date,
  "MM/DD/YYYY hh:mm:ss +00:00"; no client_id.

Azure ML speaks 2017-09-01 with the `secret` header, `clientid`, and expires_on as epoch
seconds (a number). msal also sends object_id / msi_res_id there; they are honoured, so
a client never silently gets another identity than the one it named.

Order of checks: api-version (it decides the header), the secret, resource, selection.
Errors are `{"statusCode": <status>, "message": ...}`, the shape msal reads from App
Service; a missing or wrong secret is a 401, everything else a 400 (never a status the
SDKs retry).
"""

from __future__ import annotations

import json
from typing import ClassVar

from openimds.core.errors import ImdsError, WordedError
from openimds.core.http import Request, Response
from openimds.core.identity.identity_api import IdentityDirectory, Selectors
from openimds.core.identity.identity_hosts import (
    Problem,
    SourceEndpoint,
    allowed_methods,
    secret_matches,
)
from openimds.core.identity.tokens import IssuedToken, Issuer
from openimds.core.timestamps import utc_fields
from openimds.core.vm import VmSnapshot

MODERN, LEGACY = "2019-08-01", "2017-09-01"
MODERN_SELECTORS: Selectors = {
    "client_id": "client",
    "principal_id": "object",
    "object_id": "object",
    "mi_res_id": "resource",
}
LEGACY_SELECTORS: Selectors = {"clientid": "client"}
ML_SELECTORS: Selectors = {"clientid": "client", "object_id": "object", "msi_res_id": "resource"}

_MESSAGES: dict[Problem, tuple[int, str]] = {
    "not_found": (400, "No managed identity was found for the requested identity"),
    "multiple": (
        400,
        "Multiple user assigned identities exist, please specify the clientId / resourceId "
        "of the identity in the token request",
    ),
    "malformed": (400, "The request is malformed: it needs api-version and resource"),
    "method": (405, "Only GET is allowed"),
    "throttled": (429, "Too many requests"),
    "metadata": (400, "The request is malformed"),
}


def status_error(
    status: int, message: str, headers: tuple[tuple[str, str], ...] = ()
) -> WordedError:
    return WordedError(status, {"statusCode": status, "message": message}, headers)


def unauthorized(header: str) -> WordedError:
    return status_error(401, f"The {header} header is missing or does not match")


def legacy_expires_on(epoch: int) -> str:
    """2017-09-01's expires_on, in the form Linux hosts give (azure-identity
    app_service.py _parse_app_service_expires_on): "06/20/2019 02:57:58 +00:00"."""
    year, month, day, hour, minute, second = utc_fields(epoch)
    return f"{month:02d}/{day:02d}/{year:04d} {hour:02d}:{minute:02d}:{second:02d} +00:00"


def _body(token: IssuedToken, expires_on: object, client_id: bool = True) -> bytes:
    fields: dict[str, object] = {
        "access_token": token.access_token,
        "expires_on": expires_on,
        "resource": token.resource,
        "token_type": "Bearer",
    }
    if client_id:
        fields["client_id"] = token.client_id
    return json.dumps(fields, separators=(",", ":")).encode()


class _StatusShaped(SourceEndpoint):
    def __init__(self, directory: IdentityDirectory, issuer: Issuer, secret: str) -> None:
        super().__init__(directory, issuer)
        self.secret = secret

    def word(self, problem: Problem, error: ImdsError) -> ImdsError:
        status, message = _MESSAGES[problem]
        return status_error(status, message, allowed_methods(error))

    def resource(self, request: Request) -> str:
        resource = request.param("resource")
        if not resource:
            raise status_error(400, "The resource parameter is missing")
        return resource


class AppServiceTokenEndpoint(_StatusShaped):
    """GET {IDENTITY_ENDPOINT} (2019-08-01) and GET {MSI_ENDPOINT} (2017-09-01)."""

    def answer(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        version = request.param("api-version")
        if version == MODERN:
            if not secret_matches(request.header("x-identity-header"), self.secret):
                raise unauthorized("X-IDENTITY-HEADER")
            token = self.issue(request, vm, now, self.resource(request), MODERN_SELECTORS)
            return Response(200, _body(token, str(token.expires_on)))
        if version == LEGACY:
            if not secret_matches(request.header("secret"), self.secret):
                raise unauthorized("secret")
            token = self.issue(request, vm, now, self.resource(request), LEGACY_SELECTORS)
            return Response(200, _body(token, legacy_expires_on(token.expires_on), False))
        raise status_error(400, f"api-version must be {MODERN} or {LEGACY}")


class AzureMlTokenEndpoint(_StatusShaped):
    """GET {MSI_ENDPOINT}?api-version=2017-09-01 with the `secret` header."""

    selectors: ClassVar[Selectors] = ML_SELECTORS

    def answer(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        if request.param("api-version") != LEGACY:
            raise status_error(400, f"api-version must be {LEGACY}")
        if not secret_matches(request.header("secret"), self.secret):
            raise unauthorized("secret")
        token = self.issue(request, vm, now, self.resource(request))
        return Response(200, _body(token, token.expires_on))

"""Service Fabric's managed-identity token service (docs/identity.md; spec
managed-identity-sources 2.7).

GET https://{IDENTITY_ENDPOINT}?api-version=2019-07-01-preview&resource=... with
`Secret: <IDENTITY_HEADER>`, over HTTPS whose self-signed certificate the client pins by
IDENTITY_SERVER_THUMBPRINT (the listener's business). The identity is the application's,
set by the cluster: no selector (azure-identity refuses client_id for Service Fabric), so
the VM's default identity answers. `token_sha256_to_refresh` and `xms_cc` (msal) are
ignored: there is one issuer and no revocation.

Errors are `{"error": {"code", "message"}}` with Service Fabric's codes
(SecretHeaderNotFound, ManagedIdentityNotFound, ArgumentNullOrEmpty); msal maps them to
OAuth2 errors.
"""

from __future__ import annotations

import json

from openimds.core.errors import ImdsError
from openimds.core.http import Request, Response
from openimds.core.identity.identity_api import IdentityDirectory
from openimds.core.identity.identity_hosts import (
    Problem,
    SourceEndpoint,
    allowed_methods,
    coded_error,
    secret_matches,
)
from openimds.core.identity.tokens import Issuer
from openimds.core.vm import VmSnapshot

VERSIONS = frozenset({"2019-07-01-preview"})

_ERRORS: dict[Problem, tuple[int, str, str]] = {
    "not_found": (404, "ManagedIdentityNotFound", "No managed identity is assigned"),
    "multiple": (404, "ManagedIdentityNotFound", "The application has no single identity"),
    "malformed": (400, "InvalidParameter", "The request is malformed"),
    "method": (405, "MethodNotAllowed", "Only GET is allowed"),
    "throttled": (429, "TooManyRequests", "Too many requests"),
    "metadata": (400, "InvalidParameter", "The request is malformed"),
}


class ServiceFabricTokenEndpoint(SourceEndpoint):
    def __init__(self, directory: IdentityDirectory, issuer: Issuer, secret: str) -> None:
        super().__init__(directory, issuer)
        self.secret = secret

    def answer(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        if not secret_matches(request.header("secret"), self.secret):
            raise coded_error(401, "SecretHeaderNotFound", "Secret is not found in the request")
        if request.param("api-version") not in VERSIONS:
            raise coded_error(400, "InvalidParameter", "api-version must be 2019-07-01-preview")
        resource = request.param("resource")
        if not resource:
            raise coded_error(400, "ArgumentNullOrEmpty", "The resource parameter is empty")
        token = self.issue(request, vm, now, resource)
        body = {
            "token_type": "Bearer",
            "access_token": token.access_token,
            "expires_on": token.expires_on,
            "resource": token.resource,
        }
        return Response(200, json.dumps(body, separators=(",", ":")).encode())

    def word(self, problem: Problem, error: ImdsError) -> ImdsError:
        status, code, message = _ERRORS[problem]
        return coded_error(status, code, message, allowed_methods(error))

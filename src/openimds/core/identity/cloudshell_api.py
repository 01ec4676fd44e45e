"""Cloud Shell's token endpoint (docs/identity.md; spec managed-identity-sources 2.6).

POST {MSI_ENDPOINT} (http://localhost:50342/oauth2/token in Cloud Shell) with
`Metadata: true` and a form body `resource=<resource>`. Cloud Shell hands out the signed-in
user's token; openimds answers for the VM's default identity (system-assigned, else the
only user-assigned one), since a VM file declares no users. No selector: azure-identity
refuses client_id and identity_config for Cloud Shell.

The body is the VM endpoint's (msal reads expires_in, azure-identity resource). Errors are
`{"error": {"code", "message"}}`, the shape msal's cloudshell module reads.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import parse_qsl

from openimds.core.errors import ImdsError
from openimds.core.http import Request, Response
from openimds.core.identity.identity_hosts import (
    Problem,
    SourceEndpoint,
    allowed_methods,
    coded_error,
)
from openimds.core.identity.tokens import render
from openimds.core.vm import VmSnapshot

_ERRORS: dict[Problem, tuple[int, str, str]] = {
    "not_found": (400, "IdentityNotFound", "No identity is available for this shell"),
    "multiple": (400, "IdentityNotFound", "Several identities exist and none is the default"),
    "malformed": (400, "BadRequest", "The request needs a form body with resource"),
    "method": (405, "MethodNotAllowed", "Only POST is allowed"),
    "throttled": (429, "TooManyRequests", "Too many requests"),
    "metadata": (400, "BadRequest", "Required metadata header not specified"),
}


def form_resource(body: bytes) -> str | None:
    """The `resource` field of an application/x-www-form-urlencoded body."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return dict(parse_qsl(text, keep_blank_values=True)).get("resource")


class CloudShellTokenEndpoint(SourceEndpoint):
    methods: ClassVar[tuple[str, ...]] = ("POST",)

    def answer(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        resource = form_resource(request.body)
        if not resource:
            raise coded_error(400, "BadRequest", "The form body needs resource=<resource>")
        token = self.issue(request, vm, now, resource)
        return Response(200, render(token, now))

    def word(self, problem: Problem, error: ImdsError) -> ImdsError:
        status, code, message = _ERRORS[problem]
        return coded_error(status, code, message, allowed_methods(error))

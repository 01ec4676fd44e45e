"""Azure Arc's hybrid metadata service (HIMDS), token endpoint
(docs/identity.md, "Azure Arc"; spec managed-identity-sources 2.3).

GET /metadata/identity/oauth2/token?api-version=2020-06-01&resource=... with `Metadata:
true`. Rules, in order:
1. The shared rules of the VM endpoint (X-Forwarded-For, `Metadata: true`, a repeated
   parameter, GET only), worded in the identity shape.
2. No `Authorization: Basic <secret>` naming a secret this server handed out and not yet
   redeemed -> 401 with `WWW-Authenticate: Basic realm=<key file>`: a fresh secret, written
   to a fresh key file that only the machine's privileged users can read. The client reads
   the file and repeats the request with its contents. Each secret answers once.
3. The VM endpoint's request checks (api-version, resource).
4. Selection by client_id, object_id or msi_res_id; `mi_res_id` is ignored, as the agent
   does (it then answers for the system-assigned identity). An identity the machine does
   not hold -> 404 identity_not_found, HIMDS's body.
5. The VM endpoint's token body, which echoes client_id (and object_id / msi_res_id when
   asked): newer clients refuse an answer that does not confirm the identity they asked for.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from openimds.core.errors import ImdsError, WordedError, error_response
from openimds.core.http import Request, Response
from openimds.core.identity.identity_api import (
    IdentityDirectory,
    MalformedRequest,
    Selectors,
    echo_request,
    identity_error,
    require_identity_version,
)
from openimds.core.identity.identity_hosts import Problem, SourceEndpoint
from openimds.core.identity.tokens import Issuer, render
from openimds.core.vm import VmSnapshot

# MSAL.NET #6131 (agent 1.67): Arc honours IMDS's msi_res_id; mi_res_id is not a selector.
ARC_SELECTORS: Selectors = {"client_id": "client", "object_id": "object", "msi_res_id": "resource"}

# The real agent's body for an identity the machine does not hold (MSAL.NET proposal
# azure-arc-client-id-proposal.md).
NOT_FOUND_BODY = {
    "error": "identity_not_found",
    "error_description": (
        "Identity not found: error acquiring access token: requested identity was not found"
    ),
    "error_codes": [404],
}


class ChallengeBook(Protocol):
    """The key files of the challenge (the shell writes them: files and randomness)."""

    def issue(self) -> str:
        """A fresh secret in a fresh key file; the file's path, for the realm."""
        ...

    def redeem(self, secret: str) -> bool:
        """True once for the secret of a key file handed out and not yet expired."""
        ...


class ArcTokenEndpoint(SourceEndpoint):
    selectors: ClassVar[Selectors] = ARC_SELECTORS

    def __init__(
        self, directory: IdentityDirectory, issuer: Issuer, challenges: ChallengeBook
    ) -> None:
        super().__init__(directory, issuer)
        self.challenges = challenges

    def answer(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        if not self._authorized(request):
            return self._challenge()
        require_identity_version(request)
        resource = request.param("resource")
        if not resource:
            raise MalformedRequest()
        token = self.issue(request, vm, now, resource)
        return Response(200, render(token, now, echo_request(request, ARC_SELECTORS)))

    def _authorized(self, request: Request) -> bool:
        # The scheme is case-insensitive (RFC 9110 11.1); the secret is the key file's
        # contents as they are (not base64 of user:password).
        scheme, _, secret = (request.header("authorization") or "").strip().partition(" ")
        return scheme.lower() == "basic" and bool(secret) and self.challenges.redeem(secret.strip())

    def _challenge(self) -> Response:
        # No quotes around the path: clients take everything after "=" as the path.
        realm = self.challenges.issue()
        body = {
            "error": "unauthorized_client",
            "error_description": "Read the key file the realm names and send its contents "
            "as Authorization: Basic <contents>",
        }
        header = ("WWW-Authenticate", f"Basic realm={realm}")
        return error_response(WordedError(401, body, (header,)))

    def word(self, problem: Problem, error: ImdsError) -> ImdsError:
        if problem == "not_found":
            return WordedError(404, NOT_FOUND_BODY)
        return identity_error(error)

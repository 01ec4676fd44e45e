"""Admin-listener routes of managed identities: the issuer side and key management.

Public (a relying party needs no admin token): the OpenID Connect discovery document at
`/.well-known/openid-configuration` (the default tenant) and
`/<tenant>/.well-known/openid-configuration` (like login.microsoftonline.com/<tenant>/),
and the JWKS at `/discovery/keys`. Token-protected: listing and rotating signing keys,
the identities of each VM with their generated ids, the claims a token for each of a
VM's identities would carry (`/vms/{name}/identities/claims`: claims, never a token),
and the token sources (`sources_admin.py`: `/identity/hosts`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.core.identity.identity_api import VmIdentities
from openimds.core.identity.tokens import Issuer, ManagedIdentity
from openimds.crypto.jwt_tokens import discovery_document
from openimds.crypto.signing_keys import KeyRing, generate
from openimds.identity.directory import StoreDirectory
from openimds.identity.sources_admin import SourcesAdmin
from openimds.inventory.live import UnknownVm

DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/discovery/keys"


class ClaimsQueryError(ValueError):
    """A claims request without what it needs; the message names the parameter."""


@dataclass
class IdentityAdmin:
    ring: KeyRing
    directory: StoreDirectory
    issuer: Issuer  # the token endpoint's: its policy, and the claims it would mint
    sources: SourcesAdmin | None = None
    clock: Callable[[], float] = time.time  # the `now` the metadata listener hands the core

    def routes(self) -> list[BaseRoute]:
        extra = self.sources.routes() if self.sources is not None else []
        return [
            *extra,
            Route(DISCOVERY, self.discovery, methods=["GET"]),
            Route("/{tenant}" + DISCOVERY, self.discovery, methods=["GET"]),
            Route(JWKS, self.jwks, methods=["GET"]),
            Route("/identity/keys", self.list_keys, methods=["GET"]),
            Route("/identity/keys/rotate", self.rotate, methods=["POST"]),
            Route("/identity/vms", self.vms, methods=["GET"]),
            Route("/vms/{name}/identities/claims", self.claims, methods=["GET"]),
        ]

    def public_paths(self) -> list[str]:
        """A relying party needs no admin token: discovery (any tenant: an unknown one is
        a public 404) and the JWKS."""
        return [DISCOVERY, "/{tenant}" + DISCOVERY, JWKS]

    def errors(self) -> Mapping[type[Exception], int]:
        return {ClaimsQueryError: 400, UnknownVm: 404}

    async def discovery(self, request: Request) -> Response:
        """
        responses:
          200:
            description: OpenID Connect discovery document (issuer and jwks_uri).
          404:
            description: No VM uses this tenant.
        """
        tenant: str = request.path_params.get("tenant") or self.directory.primary_tenant()
        tenant = tenant.lower()
        if tenant not in self.directory.tenants():
            return JSONResponse({"error": "not_found", "error_description": "unknown tenant"}, 404)
        base = str(request.base_url).rstrip("/")
        doc = discovery_document(self.issuer.policy.issuer_for(tenant), base + JWKS)
        return JSONResponse(doc, headers={"Cache-Control": "max-age=300"})

    async def jwks(self, request: Request) -> Response:
        """
        responses:
          200:
            description: The public signing keys (JWKS), active and recently retired.
        """
        self.ring.reload()  # another node on the same store may have rotated
        return JSONResponse(self.ring.jwks(time.time()), headers={"Cache-Control": "max-age=60"})

    async def list_keys(self, request: Request) -> Response:
        """
        responses:
          200:
            description: Signing keys with their state (never the private half).
        """
        self.ring.reload()
        active = self.ring.active.kid
        keys = [
            {
                "kid": key.kid,
                "created": int(key.created),
                "active": key.kid == active,
                "retired": None if key.retired is None else int(key.retired),
                "removeAfter": _int_or_none(self.ring.removal_time(key)),
            }
            for key in self.ring.keys
        ]
        return JSONResponse({"keys": keys})

    async def rotate(self, request: Request) -> Response:
        """
        responses:
          200:
            description: A new signing key was created and is now active.
        """
        previous = self.ring.active.kid
        key = await run_in_threadpool(generate, time.time())  # RSA keygen takes ~100 ms
        self.ring.rotate(key)
        return JSONResponse({"kid": key.kid, "previous": previous})

    async def vms(self, request: Request) -> Response:
        """
        responses:
          200:
            description: Each VM's managed identities, generated ids included.
        """
        return JSONResponse({"vms": [_vm_view(n, ids) for n, ids in self.directory.all().items()]})

    async def claims(self, request: Request) -> Response:
        """
        parameters:
          - {name: resource, in: query, required: true, schema: {type: string, minLength: 1},
             description: "The audience, e.g. https://management.azure.com/"}
        responses:
          200:
            description: Each identity of the VM with the claims (JWT payload) a token
              for it and the resource would carry now; never a token.
            content:
              application/json:
                schema:
                  type: object
                  required: [tenantId, identities]
                  properties:
                    tenantId: {type: string, nullable: true}
                    identities:
                      type: array
                      items:
                        type: object
                        required: [kind, clientId, objectId, resourceId, claims]
                        properties:
                          kind: {type: string, enum: [system, user]}
                          clientId: {type: string}
                          objectId: {type: string}
                          resourceId: {type: string}
                          claims: {type: object}
          400:
            description: No resource was given.
          404:
            description: No VM has this name.
        """
        vm = self.directory.inventory.snapshot(request.path_params["name"])
        resource = request.query_params.get("resource")
        if not resource:
            raise ClaimsQueryError("resource: required, e.g. https://management.azure.com/")
        ids = self.directory.identities(vm)
        if ids is None or not ids.all:
            return JSONResponse({"tenantId": None, "identities": []})
        now = self.clock()
        shown = [
            {
                "kind": "system" if identity.system else "user",
                **_identity_view(identity),
                "claims": self.issuer.claims(identity, ids.tenant_id, resource, now),
            }
            for identity in ids.all
        ]
        return JSONResponse({"tenantId": ids.tenant_id, "identities": shown})


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)


def _identity_view(identity: ManagedIdentity) -> dict[str, str]:
    return {
        "clientId": identity.client_id,
        "objectId": identity.object_id,
        "resourceId": identity.resource_id,
    }


def _vm_view(name: str, ids: VmIdentities | None) -> dict[str, object]:
    if ids is None:
        return {"name": name, "identities": None}
    return {
        "name": name,
        "identities": {
            "tenantId": ids.tenant_id,
            "systemAssigned": None if ids.system is None else _identity_view(ids.system),
            "userAssigned": [_identity_view(u) for u in ids.user],
        },
    }

"""`GET /identity/hosts` on the admin listener: every token source this server runs, with
what a client needs to reach it (URL, token path, secret, certificate thumbprint).

This is the one admin answer that carries secrets (App Service's IDENTITY_HEADER, Azure
ML's MSI_SECRET, Service Fabric's): `openimds env` turns it into the variables that make
the SDKs use a source. It is behind the admin token like every non-public route, and
answered with `Cache-Control: no-store`. Arc has no secret here: its clients read one-time
key files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.identity.sources import SourceInfo

VM_TOKEN_PATH = "/metadata/identity/oauth2/token"


@dataclass
class SourcesAdmin:
    infos: Sequence[SourceInfo]
    # Listener name -> base URL, filled in once the server has bound its sockets.
    bound: Mapping[str, str]

    def routes(self) -> list[BaseRoute]:
        return [Route("/identity/hosts", self.hosts, methods=["GET"])]

    def public_paths(self) -> list[str]:
        return []

    def errors(self) -> Mapping[type[Exception], int]:
        return {}

    async def hosts(self, request: Request) -> Response:
        """
        responses:
          200:
            description: The VM endpoint and each token source (Arc, App Service, Azure ML,
              Cloud Shell, Service Fabric) with URL, token path and secrets. Secret-bearing.
        """
        vm = {"name": "vm", "url": self.bound.get("metadata"), "tokenPath": VM_TOKEN_PATH}
        hosts = [vm, *(self._view(info) for info in self.infos)]
        return JSONResponse({"hosts": hosts}, headers={"Cache-Control": "no-store"})

    def _view(self, info: SourceInfo) -> dict[str, object]:
        view: dict[str, object] = {
            "name": info.name,
            "url": self.bound.get(info.name),
            "tokenPath": info.token_path,
            "vm": info.vm,
        }
        extras = (
            ("secret", info.secret),
            ("thumbprint", info.thumbprint),
            ("keyFolder", info.key_folder),
        )
        view.update({key: value for key, value in extras if value is not None})
        return view

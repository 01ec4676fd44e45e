"""Admin routes of attested data: the CA certificates.

The intermediate (DER, as Azure's "CA Issuers" URLs serve it) and the root are public,
since validation code fetches them; `GET /attested/ca` (with the token) returns every
public certificate as PEM for `openimds ca export`. Private keys stay in the state store
and are never served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.serialization import Encoding
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.crypto.ca import CertificateAuthority, pem

INTERMEDIATE_PATH: Final[str] = "/attested/intermediate.crt"
ROOT_PATH: Final[str] = "/attested/root.crt"
CA_PATH: Final[str] = "/attested/ca"
DER_TYPE: Final[str] = "application/pkix-cert"
_DER: Final = Encoding.DER


@dataclass
class AttestedAdmin:
    ca: CertificateAuthority

    def routes(self) -> list[BaseRoute]:
        return [
            Route(INTERMEDIATE_PATH, self.intermediate, methods=["GET"]),
            Route(ROOT_PATH, self.root, methods=["GET"]),
            Route(CA_PATH, self.certificates, methods=["GET"]),
        ]

    def public_paths(self) -> list[str]:
        return [INTERMEDIATE_PATH, ROOT_PATH]

    def errors(self) -> Mapping[type[Exception], int]:
        return {}

    async def intermediate(self, request: Request) -> Response:
        """
        responses:
          200:
            description: The issuing CA certificate (DER), the signing certificate's AIA target.
        """
        if not self.ca.intermediates:
            return JSONResponse({"error": "no intermediate certificate is configured"}, 404)
        return Response(self.ca.intermediates[0].public_bytes(_DER), media_type=DER_TYPE)

    async def root(self, request: Request) -> Response:
        """
        responses:
          200:
            description: The root certificate (DER) that attested documents chain to.
        """
        if self.ca.root is None:
            return JSONResponse({"error": "no root certificate is configured"}, 404)
        return Response(self.ca.root.public_bytes(_DER), media_type=DER_TYPE)

    async def certificates(self, request: Request) -> Response:
        """
        responses:
          200:
            description: Root, intermediates and signing certificates as PEM (no keys).
        """
        ca = self.ca
        return JSONResponse(
            {
                "root": pem(ca.root) if ca.root is not None else None,
                "intermediates": [pem(c) for c in ca.intermediates],
                "aia_url": ca.aia_url,
            }
        )

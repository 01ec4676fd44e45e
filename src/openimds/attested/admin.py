"""Admin routes of attested data: the CA certificates, and a VM's document checked.

The intermediate (DER, as Azure's "CA Issuers" URLs serve it) and the root are public,
since validation code fetches them; `GET /attested/ca` (with the token) returns every
public certificate as PEM for `openimds ca export`. Private keys stay in the state store
and are never served. `GET /vms/{name}/attested` signs the document the VM would get
(through the metadata service, fleet/preview.py) and verifies it in place with the
checks of `openimds attested verify` (crypto/verify.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.crypto.ca import CertificateAuthority, pem
from openimds.crypto.verify import Examined, examine
from openimds.fleet.preview import MetadataPreview
from openimds.inventory.live import UnknownVm

INTERMEDIATE_PATH: Final[str] = "/attested/intermediate.crt"
ROOT_PATH: Final[str] = "/attested/root.crt"
CA_PATH: Final[str] = "/attested/ca"
DER_TYPE: Final[str] = "application/pkix-cert"
DOCUMENT_PATH: Final[str] = "/metadata/attested/document"
_DER: Final = Encoding.DER


class DocumentRefused(ValueError):
    """The metadata service refused the document request (api-version, nonce)."""


@dataclass
class AttestedAdmin:
    ca: CertificateAuthority
    preview: MetadataPreview

    def routes(self) -> list[BaseRoute]:
        return [
            Route(INTERMEDIATE_PATH, self.intermediate, methods=["GET"]),
            Route(ROOT_PATH, self.root, methods=["GET"]),
            Route(CA_PATH, self.certificates, methods=["GET"]),
            Route("/vms/{name}/attested", self.document, methods=["GET"]),
        ]

    def public_paths(self) -> list[str]:
        return [INTERMEDIATE_PATH, ROOT_PATH]

    def errors(self) -> Mapping[type[Exception], int]:
        return {DocumentRefused: 400, UnknownVm: 404}

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

    async def document(self, request: Request) -> Response:
        """
        parameters:
          - {name: api-version, in: query, required: true, schema: {type: string},
             description: "e.g. 2020-09-01"}
          - {name: nonce, in: query, schema: {type: string, pattern: "^[A-Za-z0-9]{0,32}$"},
             description: "Default: the time, as the metadata service puts it"}
        responses:
          200:
            description: The document the VM would get (not counted against its budget,
              not journaled), its signed JSON, and the checks of attested verify.
            content:
              application/json:
                schema:
                  type: object
                  required: [document, encoding, signature, verification]
                  properties:
                    document: {type: object, nullable: true}
                    encoding: {type: string}
                    signature: {type: string}
                    verification:
                      type: object
                      required: [valid, signer, chain, errors]
                      properties:
                        valid: {type: boolean}
                        signer: &certificate
                          type: object
                          nullable: true
                          required: [subject, issuer, notBefore, notAfter]
                          properties:
                            subject: {type: string}
                            issuer: {type: string}
                            notBefore: {type: string, format: date-time}
                            notAfter: {type: string, format: date-time}
                        chain: {type: array, items: *certificate}
                        errors: {type: array, items: {type: string}}
          400:
            description: The metadata service refused the request (its answer is quoted).
          404:
            description: No VM has this name.
        """
        preview = self.preview
        vm = preview.inventory.snapshot(request.path_params["name"])
        query = request.query_params
        params = [(key, query[key]) for key in ("api-version", "nonce") if key in query]
        answer = preview.get(vm, DOCUMENT_PATH, params)
        if answer.status != 200:
            text = answer.body.decode("utf-8", "replace")
            raise DocumentRefused(f"the metadata service answers {answer.status}: {text}")
        signed = json.loads(answer.body)
        root = self.ca.root
        found = examine(
            answer.body,
            [root] if root is not None else [],
            nonce=query.get("nonce") or None,
            at=datetime.fromtimestamp(preview.clock(), UTC),
            intermediates=self.ca.intermediates,
        )
        return JSONResponse(
            {
                "document": found.document,
                "encoding": signed["encoding"],
                "signature": signed["signature"],
                "verification": _verification(found),
            }
        )


def _verification(found: Examined) -> dict[str, object]:
    return {
        "valid": not found.errors,
        "signer": None if found.signer is None else certificate_view(found.signer),
        "chain": [certificate_view(cert) for cert in found.chain],
        "errors": found.errors,
    }


def certificate_view(cert: x509.Certificate) -> dict[str, str]:
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "notBefore": _iso(cert.not_valid_before_utc),
        "notAfter": _iso(cert.not_valid_after_utc),
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

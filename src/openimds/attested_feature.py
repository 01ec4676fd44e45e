"""Attested data, wired into a server: the endpoint, its CA, and the issuer routes.

The admin listener serves the intermediate (DER, as Azure's "CA Issuers" URLs do) and
the root without a token, since validation code fetches them; `GET /attested/ca` (with
the token) returns all public certificates as PEM for `openimds ca export`. Private keys
stay in the state store and are never served.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Final

from cryptography.hazmat.primitives.serialization import Encoding
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from openimds.config import Config
from openimds.core.attested import AttestedEndpoint, SignedDocumentCache
from openimds.crypto.ca import CaError, CertificateAuthority, Cloud, cloud_of, pem
from openimds.crypto.pkcs7 import Pkcs7Signer
from openimds.runtime import Runtime

log = logging.getLogger("openimds.attested")

INTERMEDIATE_PATH: Final[str] = "/attested/intermediate.crt"
ROOT_PATH: Final[str] = "/attested/root.crt"
CA_PATH: Final[str] = "/attested/ca"
DER_TYPE: Final[str] = "application/pkix-cert"
_DER: Final = Encoding.DER


def issuer_url(config: Config) -> str | None:
    """Where clients fetch the intermediate: the configured public base URL, else the
    admin listener's address. None (no AIA extension) when it cannot be known: a Unix
    socket, or port 0 before the listener has bound."""
    base = config.attested.issuer_base_url
    if base:
        return base.rstrip("/") + INTERMEDIATE_PATH
    listen = config.admin.listen
    if listen.startswith("unix:"):
        return None
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if int(port) == 0:
        return None
    # A wildcard bind is reachable on loopback from this host; set issuer_base_url for others.
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{INTERMEDIATE_PATH}"


def build_ca(runtime: Runtime) -> CertificateAuthority:
    """Read the configured files now (a bad one stops the start) and create or load the
    keys on a worker thread, so the listeners open without waiting for key generation
    and the first request finds a signing certificate for every configured VM's cloud."""
    settings = runtime.config.attested
    ca = CertificateAuthority(runtime.store, settings, issuer_url(runtime.config))
    vms = runtime.fleet.vms.values()
    clouds = sorted(
        {settings.cloud}
        if settings.cloud
        else {cloud_of(str(vm.compute.get("azEnvironment", ""))) for vm in vms}
    )
    worker = threading.Thread(target=_prepare, args=(ca, clouds), name="attested-ca", daemon=True)
    worker.start()
    runtime.closers.append(lambda: worker.join(timeout=30))
    return ca


def _prepare(ca: CertificateAuthority, clouds: list[Cloud]) -> None:
    try:
        ca.prepare(clouds)
    except Exception:  # the first request retries, and answers 500 if it fails again
        log.exception("cannot prepare the attested-data certificates")


def routes(ca: CertificateAuthority) -> list[Route]:
    async def intermediate(request: Request) -> Response:
        """
        responses:
          200:
            description: The issuing CA certificate (DER), the signing certificate's AIA target.
        """
        if not ca.intermediates:
            return JSONResponse({"error": "no intermediate certificate is configured"}, 404)
        return Response(ca.intermediates[0].public_bytes(_DER), media_type=DER_TYPE)

    async def root(request: Request) -> Response:
        """
        responses:
          200:
            description: The root certificate (DER) that attested documents chain to.
        """
        if ca.root is None:
            return JSONResponse({"error": "no root certificate is configured"}, 404)
        return Response(ca.root.public_bytes(_DER), media_type=DER_TYPE)

    async def certificates(request: Request) -> Response:
        """
        responses:
          200:
            description: Root, intermediates and signing certificates as PEM (no keys).
        """
        return JSONResponse(
            {
                "root": pem(ca.root) if ca.root is not None else None,
                "intermediates": [pem(c) for c in ca.intermediates],
                "aia_url": ca.aia_url,
            }
        )

    return [
        Route(INTERMEDIATE_PATH, intermediate, methods=["GET"]),
        Route(ROOT_PATH, root, methods=["GET"]),
        Route(CA_PATH, certificates, methods=["GET"]),
    ]


def install(runtime: Runtime) -> None:
    settings = runtime.config.attested
    try:
        ca = build_ca(runtime)
    except CaError as exc:
        print(f"openimds: attested data: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    cache = SignedDocumentCache(
        settings.cache_ttl_seconds, settings.cache_size, reuse_nonce=settings.cached_nonce_quirk
    )
    endpoint = AttestedEndpoint(
        Pkcs7Signer(ca, settings.cloud), validity=settings.validity_seconds, cache=cache
    )
    runtime.endpoints.append(("/metadata/attested/document", endpoint))
    runtime.admin_routes.extend(routes(ca))
    runtime.public_paths.extend([INTERMEDIATE_PATH, ROOT_PATH])

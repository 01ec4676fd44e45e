"""RS256 JWTs for managed-identity tokens, and the OpenID Connect discovery document."""

from __future__ import annotations

from collections.abc import Mapping

import jwt

from openimds.crypto.signing_keys import KeyRing


class JwtSigner:
    """core.identity.tokens.TokenSigner backed by the key ring's active key."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def sign(self, claims: Mapping[str, object]) -> str:
        key = self.ring.active
        # Entra's header carries typ, alg and kid (it also sends x5t; we have no cert).
        return jwt.encode(
            dict(claims), key.private_key, algorithm="RS256", headers={"kid": key.kid}
        )


def discovery_document(issuer: str, jwks_uri: str) -> dict[str, object]:
    """What a relying party needs to find the keys; shaped like Entra's v1 document."""
    return {
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "claims_supported": [
            "aud",
            "iss",
            "iat",
            "nbf",
            "exp",
            "appid",
            "appidacr",
            "idp",
            "idtyp",
            "oid",
            "sub",
            "tid",
            "uti",
            "ver",
            "xms_mirid",
        ],
    }

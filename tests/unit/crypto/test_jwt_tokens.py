"""RS256 JWTs signed with the key ring's active key, and the OpenID discovery document."""

from __future__ import annotations

import json

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from openimds.crypto.jwt_tokens import JwtSigner, discovery_document
from openimds.crypto.signing_keys import KeyRing, SigningKey
from openimds.store.memory import MemoryStore
from tests.support.clock import FakeClock

NOW = 1_800_000_000.0


def test_signed_token_verifies_with_the_published_key() -> None:
    ring = KeyRing(MemoryStore(), retention=3600, clock=FakeClock(NOW))
    ring.load()
    token = JwtSigner(ring).sign({"aud": "https://x", "exp": 4_000_000_000})
    assert jwt.get_unverified_header(token) == {
        "alg": "RS256",
        "kid": ring.active.kid,
        "typ": "JWT",
    }
    (jwk,) = ring.jwks(NOW)["keys"]
    public = RSAAlgorithm.from_jwk(json.dumps(jwk))
    assert isinstance(public, rsa.RSAPublicKey)
    claims = jwt.decode(token, public, algorithms=["RS256"], audience="https://x")
    assert claims["aud"] == "https://x"


def test_tokens_signed_before_rotation_still_verify(spare_keys: list[SigningKey]) -> None:
    ring = KeyRing(MemoryStore(), retention=1000, clock=FakeClock(NOW))
    ring.load()
    signer = JwtSigner(ring)
    before = signer.sign({"n": 1})
    ring.rotate(spare_keys[1])
    after = signer.sign({"n": 2})
    jwks = jwt.PyJWKSet.from_dict(ring.jwks(NOW))
    for token in (before, after):
        kid = jwt.get_unverified_header(token)["kid"]
        key = next(k for k in jwks.keys if k.key_id == kid)
        assert jwt.decode(token, key.key, algorithms=["RS256"])["n"] in (1, 2)
    assert jwt.get_unverified_header(before)["kid"] != jwt.get_unverified_header(after)["kid"]


def test_discovery_document() -> None:
    doc = discovery_document("https://sts.windows.net/t/", "http://127.0.0.1:8081/discovery/keys")
    assert doc["issuer"] == "https://sts.windows.net/t/"
    assert doc["jwks_uri"] == "http://127.0.0.1:8081/discovery/keys"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]

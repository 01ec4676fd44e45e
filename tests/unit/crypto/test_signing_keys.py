"""Token signing keys: generation, persistence, rotation, retention, JWKS, RS256 JWTs."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import jwt
import pytest
from jwt.algorithms import RSAAlgorithm

from openimds.crypto.jwt_tokens import JwtSigner, discovery_document
from openimds.crypto.signing_keys import KIND, KeyRing, SigningKey, generate
from openimds.store.memory import MemoryStore
from openimds.store.sqlite import SqliteStore

PRIVATE_FIELDS = {"d", "p", "q", "dp", "dq", "qi"}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def spare_keys() -> list[SigningKey]:
    """RSA generation is slow-ish: make the keys the tests rotate to once."""
    return [generate(1_800_000_000.0 + i) for i in range(3)]


def test_first_start_creates_one_key_and_a_restart_keeps_it() -> None:
    store = MemoryStore()
    ring = KeyRing(store, retention=3600, clock=Clock())
    ring.load()
    assert len(ring.keys) == 1
    again = KeyRing(store, retention=3600, clock=Clock())
    again.load()
    assert [k.kid for k in again.keys] == [ring.active.kid]


def test_kid_is_the_rfc7638_thumbprint() -> None:
    store = MemoryStore()
    ring = KeyRing(store, retention=3600, clock=Clock())
    ring.load()
    jwk = ring.active.public_jwk()
    expected = jwt.PyJWK(jwk).key  # parses: a well-formed RSA JWK
    assert expected is not None
    import base64
    import hashlib

    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
    digest = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest())
    assert ring.active.kid == digest.rstrip(b"=").decode()


def test_jwks_has_public_numbers_only() -> None:
    ring = KeyRing(MemoryStore(), retention=3600, clock=Clock())
    ring.load()
    (key,) = ring.jwks(Clock()())["keys"]
    assert not PRIVATE_FIELDS & set(key)
    assert key["kid"] == ring.active.kid
    assert (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "RS256")


def test_signed_token_verifies_with_the_published_key() -> None:
    ring = KeyRing(MemoryStore(), retention=3600, clock=Clock())
    ring.load()
    token = JwtSigner(ring).sign({"aud": "https://x", "exp": 4_000_000_000})
    assert jwt.get_unverified_header(token) == {
        "alg": "RS256",
        "kid": ring.active.kid,
        "typ": "JWT",
    }
    (jwk,) = ring.jwks(Clock()())["keys"]
    public = RSAAlgorithm.from_jwk(json.dumps(jwk))
    claims = jwt.decode(token, public, algorithms=["RS256"], audience="https://x")  # type: ignore[arg-type]
    assert claims["aud"] == "https://x"


def test_rotation_keeps_the_old_key_until_its_tokens_expire(spare_keys: list[SigningKey]) -> None:
    clock = Clock()
    store = MemoryStore()
    ring = KeyRing(store, retention=1000, clock=clock)
    ring.load()
    old = ring.active
    new = ring.rotate(spare_keys[0])
    assert ring.active.kid == new.kid != old.kid
    retired = next(k for k in ring.keys if k.kid == old.kid)
    assert retired.retired == new.created
    published = {k["kid"] for k in ring.jwks(new.created + 999)["keys"]}
    assert published == {old.kid, new.kid}
    assert ring.prune(new.created + 999) == []
    assert ring.prune(new.created + 1000) == [old.kid]
    assert [k.kid for k in ring.keys] == [new.kid]
    assert store.get_record(KIND, old.kid) is None
    assert {k["kid"] for k in ring.jwks(new.created + 5000)["keys"]} == {new.kid}


def test_tokens_signed_before_rotation_still_verify(spare_keys: list[SigningKey]) -> None:
    ring = KeyRing(MemoryStore(), retention=1000, clock=Clock())
    ring.load()
    signer = JwtSigner(ring)
    before = signer.sign({"n": 1})
    ring.rotate(spare_keys[1])
    after = signer.sign({"n": 2})
    jwks = jwt.PyJWKSet.from_dict(ring.jwks(Clock()()))
    for token in (before, after):
        kid = jwt.get_unverified_header(token)["kid"]
        key = next(k for k in jwks.keys if k.key_id == kid)
        assert jwt.decode(token, key.key, algorithms=["RS256"])["n"] in (1, 2)
    assert jwt.get_unverified_header(before)["kid"] != jwt.get_unverified_header(after)["kid"]


def test_keys_survive_in_a_private_sqlite_file(
    tmp_path: Path, spare_keys: list[SigningKey]
) -> None:
    path = tmp_path / "state" / "state.db"
    store = SqliteStore(str(path))
    ring = KeyRing(store, retention=1000, clock=Clock())
    ring.load()
    ring.rotate(spare_keys[2])
    kids = [k.kid for k in ring.keys]
    store.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    reopened = SqliteStore(str(path))
    try:
        ring2 = KeyRing(reopened, retention=1000, clock=Clock())
        ring2.load()
        assert [k.kid for k in ring2.keys] == kids
        assert ring2.active.kid == kids[-1]
    finally:
        reopened.close()


def test_reload_sees_a_key_another_process_added(spare_keys: list[SigningKey]) -> None:
    store = MemoryStore()
    mine = KeyRing(store, retention=1000, clock=Clock())
    mine.load()
    theirs = KeyRing(store, retention=1000, clock=Clock(1_900_000_000.0))
    theirs.load()
    theirs.rotate()
    mine.reload()
    assert mine.active.kid == theirs.active.kid


def test_discovery_document() -> None:
    doc = discovery_document("https://sts.windows.net/t/", "http://127.0.0.1:8081/discovery/keys")
    assert doc["issuer"] == "https://sts.windows.net/t/"
    assert doc["jwks_uri"] == "http://127.0.0.1:8081/discovery/keys"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]

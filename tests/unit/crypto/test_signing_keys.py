"""Token signing keys: generation, persistence, rotation, retention, the JWKS."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import jwt
import pytest

from openimds.crypto import signing_keys
from openimds.crypto.signing_keys import KIND, KeyRing, SigningKey
from openimds.store.memory import MemoryStore
from openimds.store.sqlite import SqliteStore
from tests.support.clock import FakeClock

PRIVATE_FIELDS = {"d", "p", "q", "dp", "dq", "qi"}
NOW = 1_800_000_000.0


def test_first_start_creates_one_key_and_a_restart_keeps_it() -> None:
    store = MemoryStore()
    ring = KeyRing(store, retention=3600, clock=FakeClock(NOW))
    ring.load()
    assert len(ring.keys) == 1
    again = KeyRing(store, retention=3600, clock=FakeClock(NOW))
    again.load()
    assert [k.kid for k in again.keys] == [ring.active.kid]


def test_kid_is_the_rfc7638_thumbprint() -> None:
    store = MemoryStore()
    ring = KeyRing(store, retention=3600, clock=FakeClock(NOW))
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
    ring = KeyRing(MemoryStore(), retention=3600, clock=FakeClock(NOW))
    ring.load()
    (key,) = ring.jwks(NOW)["keys"]
    assert not PRIVATE_FIELDS & set(key)
    assert key["kid"] == ring.active.kid
    assert (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "RS256")


def test_rotation_keeps_the_old_key_until_its_tokens_expire(spare_keys: list[SigningKey]) -> None:
    clock = FakeClock(NOW)
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


def test_keys_survive_in_a_private_sqlite_file(
    tmp_path: Path, spare_keys: list[SigningKey]
) -> None:
    path = tmp_path / "state" / "state.db"
    store = SqliteStore(str(path))
    ring = KeyRing(store, retention=1000, clock=FakeClock(NOW))
    ring.load()
    ring.rotate(spare_keys[2])
    kids = [k.kid for k in ring.keys]
    store.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    reopened = SqliteStore(str(path))
    try:
        ring2 = KeyRing(reopened, retention=1000, clock=FakeClock(NOW))
        ring2.load()
        assert [k.kid for k in ring2.keys] == kids
        assert ring2.active.kid == kids[-1]
    finally:
        reopened.close()


def test_reload_sees_a_key_another_process_added(spare_keys: list[SigningKey]) -> None:
    store = MemoryStore()
    mine = KeyRing(store, retention=1000, clock=FakeClock(NOW))
    mine.load()
    theirs = KeyRing(store, retention=1000, clock=FakeClock(1_900_000_000.0))
    theirs.load()
    theirs.rotate()
    mine.reload()
    assert mine.active.kid == theirs.active.kid


def test_keys_this_ring_wrote_are_not_parsed_again(
    spare_keys: list[SigningKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parsing a private key checks it (tens of milliseconds each, at every first start).
    parsed: list[str] = []
    real = signing_keys._decode

    def counting(value: str) -> SigningKey:
        parsed.append(json.loads(value)["kid"])
        return real(value)

    monkeypatch.setattr(signing_keys, "_decode", counting)
    store = MemoryStore()
    ring = KeyRing(store, retention=1000, clock=FakeClock(NOW))
    ring.load()
    ring.rotate(spare_keys[1])
    assert parsed == []
    assert ring.active.kid == spare_keys[1].kid and len(ring.keys) == 2
    assert ring.keys[0].retired == spare_keys[1].created
    other = KeyRing(store, retention=1000, clock=FakeClock(NOW))
    other.load()  # another process reads them from the store: parsed there
    assert sorted(parsed) == sorted(k.kid for k in ring.keys)
    assert [(k.kid, k.retired) for k in other.keys] == [(k.kid, k.retired) for k in ring.keys]

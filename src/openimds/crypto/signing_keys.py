"""The token signing keys: RSA 2048, kept in the state store, rotated on demand.

Lifecycle of a key: created (and active: the newest key signs) -> retired when a newer key
is created -> removed once every token it signed has expired (retired + lifetime + skew).
Until then its public half stays in the JWKS, so tokens issued before a rotation keep
validating. Private keys live only in the store (a 0600 file for SQLite); the JWKS is
built from public numbers only.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from openimds.store import Put, Store, decoding

KIND = "identity_key"
KEY_SIZE = 2048

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    created: float
    retired: float | None
    private_key: rsa.RSAPrivateKey = field(repr=False, compare=False)

    def public_jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64_uint(numbers.n),
            "e": _b64_uint(numbers.e),
        }


def generate(now: float) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    return SigningKey(kid_of(private), now, None, private)


def kid_of(private: rsa.RSAPrivateKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): stable and derived from the key."""
    numbers = private.public_key().public_numbers()
    canonical = json.dumps(
        {"e": _b64_uint(numbers.e), "kty": "RSA", "n": _b64_uint(numbers.n)},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64(hashlib.sha256(canonical.encode()).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64_uint(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _encode(key: SigningKey) -> str:
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps({"kid": key.kid, "created": key.created, "retired": key.retired, "pem": pem})


def _decode(value: str) -> SigningKey:
    data = json.loads(value)
    private = serialization.load_pem_private_key(data["pem"].encode(), password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValueError(f"signing key {data['kid']} is not an RSA key")
    retired = None if data["retired"] is None else float(data["retired"])
    return SigningKey(str(data["kid"]), float(data["created"]), retired, private)


class KeyRing:
    """The signing keys of this server. `retention` is how long a retired key stays
    published: the longest token lifetime plus clock skew."""

    def __init__(self, store: Store, retention: float, clock: Clock) -> None:
        self.store = store
        self.retention = retention
        self.clock = clock
        self._keys: list[SigningKey] = []
        self._parsed: dict[str, tuple[str, SigningKey]] = {}

    @property
    def active(self) -> SigningKey:
        return self._keys[-1]

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        return tuple(self._keys)

    def load(self) -> None:
        """Read the keys from the store; create the first one on first start."""
        self.reload()
        if not self._keys:
            self._add(generate(self.clock()))

    def reload(self) -> None:
        """Pick up keys another process on the same store added (cheap: parsed once).
        A key that cannot be decoded is a CorruptRecord."""
        keys = []
        for kid, value in self.store.list_records(KIND):
            cached = self._parsed.get(kid)
            if cached is None or cached[0] != value:
                with decoding(KIND, kid):
                    cached = (value, _decode(value))
                self._parsed[kid] = cached
            keys.append(cached[1])
        # The one key never retired is the active one and sorts last; creation time alone
        # could tie (two keys made within one clock tick).
        keys.sort(key=lambda k: (k.retired is None, k.created, k.kid))
        if keys:
            self._keys = _one_active(keys)

    def rotate(self, new_key: SigningKey | None = None) -> SigningKey:
        """Make a new key active; the previous one is retired but stays published."""
        key = new_key or generate(self.clock())
        self._add(key)
        return key

    def _add(self, key: SigningKey) -> None:
        written = [key]
        for old in self._keys:
            if old.retired is None:
                written.append(SigningKey(old.kid, old.created, key.created, old.private_key))
        encoded = {each.kid: (_encode(each), each) for each in written}
        self.store.write_batch([Put(KIND, kid, text) for kid, (text, _) in encoded.items()])
        # Known already: reading back what was just written would parse each private key
        # again, and parsing checks the key (tens of milliseconds at every first start).
        self._parsed.update(encoded)
        self.reload()

    def removal_time(self, key: SigningKey) -> float | None:
        return None if key.retired is None else key.retired + self.retention

    def published(self, now: float) -> list[SigningKey]:
        """Keys whose tokens may still be valid: the active one and recent retirees."""
        return [k for k in self._keys if (t := self.removal_time(k)) is None or t > now]

    def jwks(self, now: float) -> dict[str, list[dict[str, str]]]:
        return {"keys": [k.public_jwk() for k in self.published(now)]}

    def prune(self, now: float) -> list[str]:
        """Delete keys whose last token has expired. Returns their kids."""
        gone = [k.kid for k in self._keys if (t := self.removal_time(k)) is not None and t <= now]
        for kid in gone:
            self.store.delete_record(KIND, kid)
            self._parsed.pop(kid, None)
        if gone:
            self._keys = [k for k in self._keys if k.kid not in gone]
        return gone


def _one_active(keys: list[SigningKey]) -> list[SigningKey]:
    """Nodes sharing a store that start together may each create a first key. The newest
    unretired key is the active one on every node; the others count as retired when it
    was created, so they leave the JWKS like any retired key."""
    newest = keys[-1]
    if newest.retired is not None:
        return keys
    return [
        SigningKey(k.kid, k.created, newest.created, k.private_key)
        if k.retired is None and k is not newest
        else k
        for k in keys
    ]

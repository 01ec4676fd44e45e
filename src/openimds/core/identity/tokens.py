"""Managed-identity access tokens: their claims, their cache, their wire body (docs/identity.md).

A token is minted once per (VM, identity, resource) and then served from the cache until
it nears expiry, as Azure's managed-identity subsystem does. Minting is the only step that
signs; serving a cached token only formats the remaining lifetime into pre-rendered bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

# Entra ID back-dates iat/nbf by five minutes to absorb clock skew. Azure does not document
# this; we copy it from tokens seen in the wild (docs/identity.md).
CLOCK_SKEW: Final[int] = 300
# MSAL treats a token with under 300 s left as expired, so a token handed out must
# keep more than that; a cached token is replaced once less than this margin remains.
MIN_REFRESH_MARGIN: Final[int] = 360
CACHE_LIMIT: Final[int] = 4096


class TokenSigner(Protocol):
    """Signs a claim set as a compact JWT (RS256, `kid` in the header)."""

    def sign(self, claims: Mapping[str, object]) -> str: ...


@dataclass(frozen=True, slots=True)
class ManagedIdentity:
    """One identity of a VM, with every id filled in (the shell generates missing ones)."""

    client_id: str
    object_id: str
    resource_id: str
    system: bool = False


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    lifetime: int  # seconds
    issuer: str  # may contain `{tenant}`

    def issuer_for(self, tenant: str) -> str:
        return self.issuer.replace("{tenant}", tenant)

    @property
    def refresh_margin(self) -> int:
        return max(MIN_REFRESH_MARGIN, self.lifetime // 10)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed token and its body, pre-rendered around the one field that changes."""

    access_token: str
    expires_on: int
    head: bytes  # up to the opening quote of expires_in's value
    tail: bytes  # from the closing quote of expires_in's value, without the final brace
    client_id: str = ""  # of the identity it was issued to
    resource: str = ""


def claims(
    identity: ManagedIdentity,
    tenant: str,
    resource: str,
    policy: TokenPolicy,
    issued_at: int,
    uti: str,
) -> dict[str, object]:
    """The claims of an Entra ID app-only token for a managed identity (v1 form)."""
    issuer = policy.issuer_for(tenant)
    return {
        "aud": resource,
        "iss": issuer,
        "iat": issued_at - CLOCK_SKEW,
        "nbf": issued_at - CLOCK_SKEW,
        "exp": issued_at + policy.lifetime,
        "appid": identity.client_id,
        "appidacr": "2",  # managed identities authenticate with a certificate
        "idp": issuer,
        "idtyp": "app",
        "oid": identity.object_id,
        "sub": identity.object_id,
        "tid": tenant,
        "uti": uti,
        "ver": "1.0",
        "xms_mirid": identity.resource_id,
    }


def mint(
    signer: TokenSigner,
    identity: ManagedIdentity,
    tenant: str,
    resource: str,
    policy: TokenPolicy,
    now: float,
    uti: str,
) -> IssuedToken:
    issued_at = int(now)
    claim_set = claims(identity, tenant, resource, policy, issued_at, uti)
    token = signer.sign(claim_set)
    expires_on = issued_at + policy.lifetime
    # Every value is a JSON string, numbers included; field order as in the example of
    # Azure's managed-identity docs, then client_id (Azure's REST spec).
    head = b'{"access_token":' + _q(token) + b',"refresh_token":"","expires_in":"'
    tail = b"".join(
        (
            b'","expires_on":"%d"' % expires_on,
            b',"ext_expires_in":"%d"' % policy.lifetime,
            b',"not_before":"%d"' % (issued_at - CLOCK_SKEW),
            b',"resource":' + _q(resource),
            b',"token_type":"Bearer"',
            b',"client_id":' + _q(identity.client_id),
        )
    )
    return IssuedToken(token, expires_on, head, tail, identity.client_id, resource)


def render(token: IssuedToken, now: float, echo: bytes = b"") -> bytes:
    """The success body. `expires_in` counts down on cached tokens: Azure does not say so,
    but returns the same token until it nears expiry (docs/identity.md)."""
    remaining = max(0, token.expires_on - int(now))
    return b"".join((token.head, b"%d" % remaining, token.tail, echo, b"}"))


def echo_fields(fields: Mapping[str, str]) -> bytes:
    # Azure's REST spec: object_id / msi_res_id are echoed when the request named them.
    return b"".join(b"," + _q(k) + b":" + _q(v) for k, v in fields.items())


def _q(value: str) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


CacheKey = tuple[str, str, str]  # (VM id, identity client id, resource)


class TokenCache:
    """In-memory tokens by (VM, identity, resource). Deliberately not persisted: after a
    restart the first request mints again, as a rebooted Azure host would."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        self.limit = limit
        self._entries: dict[CacheKey, IssuedToken] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def fresh(self, key: CacheKey, now: float, margin: int) -> IssuedToken | None:
        token = self._entries.get(key)
        if token is not None and token.expires_on - now > margin:
            return token
        return None

    def put(self, key: CacheKey, token: IssuedToken, now: float) -> None:
        if key not in self._entries and len(self._entries) >= self.limit:
            self._evict(now)
        self._entries[key] = token

    def _evict(self, now: float) -> None:
        """Drop expired tokens; if that frees nothing, the oldest half (bounded memory
        whatever resources a caller asks for)."""
        live = {k: t for k, t in self._entries.items() if t.expires_on > now}
        if len(live) >= self.limit:
            keep = sorted(live.items(), key=lambda kv: kv[1].expires_on)[self.limit // 2 :]
            live = dict(keep)
        self._entries = live


IdSource = Callable[[], str]


@dataclass(frozen=True, slots=True)
class Issuer:
    """Mints and caches tokens: one per server, shared by every token source (the VM
    endpoint, Arc, App Service, ...), so each hands out the same token for the same
    (VM, identity, resource)."""

    signer: TokenSigner
    cache: TokenCache
    policy: TokenPolicy
    new_id: IdSource

    def claims(
        self, identity: ManagedIdentity, tenant: str, resource: str, now: float
    ) -> dict[str, object]:
        """The claims a token minted now would carry, with an id of its own; nothing is
        signed or cached (the admin API shows claims, never a token)."""
        return claims(identity, tenant, resource, self.policy, int(now), self.new_id())

    def token(
        self,
        key: CacheKey,
        identity: ManagedIdentity,
        tenant: str,
        now: float,
        fresh: bool = False,
    ) -> tuple[IssuedToken, bool]:
        """The cached token for `key` while it is fresh, else (or with `fresh`) a newly
        minted one that replaces it; and whether it was minted."""
        if not fresh:
            cached = self.cache.fresh(key, now, self.policy.refresh_margin)
            if cached is not None:
                return cached, False
        token = mint(self.signer, identity, tenant, key[2], self.policy, now, self.new_id())
        self.cache.put(key, token, now)
        return token, True

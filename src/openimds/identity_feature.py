"""Managed identities, wired into a Runtime: token and info endpoints on the metadata
listener, discovery/JWKS and key management on the admin listener, a 20 rps budget."""

from __future__ import annotations

import base64
import secrets
import time

from openimds.core.identity import IdentityInfoEndpoint, TokenEndpoint
from openimds.core.throttle import RateLimiter
from openimds.core.tokens import CLOCK_SKEW, TokenCache, TokenPolicy
from openimds.crypto.jwt_tokens import JwtSigner
from openimds.crypto.signing_keys import KeyRing
from openimds.identity_directory import StoreDirectory, default_tenant
from openimds.runtime import Runtime
from openimds.web.identity_routes import IdentityAdmin

TOKEN_PATH = "/metadata/identity/oauth2/token"
INFO_PATH = "/metadata/identity/info"


def new_uti() -> str:
    # Entra's `uti` is 16 random bytes, base64url without padding (22 characters).
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()


def install(runtime: Runtime) -> None:
    settings = runtime.config.identity
    store = runtime.store
    directory = StoreDirectory(store, runtime.fleet, default_tenant(store, settings.tenant_id))
    directory.all()  # generate missing ids now, not on a first token request
    # A retired key stays published while a token it signed may be valid (+ skew leeway).
    ring = KeyRing(store, retention=settings.token_lifetime + CLOCK_SKEW, clock=time.time)
    ring.load()
    policy = TokenPolicy(settings.token_lifetime, settings.issuer)
    cache = TokenCache()
    token = TokenEndpoint(directory, JwtSigner(ring), cache, policy, new_uti)
    runtime.endpoints.append((TOKEN_PATH, token))
    runtime.endpoints.append((INFO_PATH, IdentityInfoEndpoint(directory)))
    runtime.limiters[TokenEndpoint.name] = RateLimiter(settings.rate_limit)
    admin = IdentityAdmin(ring, directory, policy)
    runtime.admin_routes.extend(admin.routes())
    runtime.public_paths.extend(admin.public_paths())
    runtime.background.append(lambda: _prune(ring))


def _prune(ring: KeyRing) -> None:
    ring.prune(time.time())

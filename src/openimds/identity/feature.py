"""Managed identities, plugged into a server: token and info endpoints on the metadata
listener, discovery/JWKS and key management on the admin listener, a 20 rps budget, and
a listener per token source the config enables (Arc, App Service, ...: sources.py), all
issuing through the one Issuer."""

from __future__ import annotations

import base64
import secrets
import time

from openimds.core.identity.identity_api import IdentityInfoEndpoint, TokenEndpoint
from openimds.core.identity.platform_metadata_api import PlatformMetadataEndpoint
from openimds.core.identity.tokens import CLOCK_SKEW, Issuer, TokenCache, TokenPolicy
from openimds.core.throttle import RateLimiter
from openimds.crypto.jwt_tokens import JwtSigner
from openimds.crypto.signing_keys import KIND, KeyRing
from openimds.identity.admin import IdentityAdmin
from openimds.identity.directory import StoreDirectory, default_tenant
from openimds.identity.sources import build_sources
from openimds.identity.sources_admin import SourcesAdmin
from openimds.runtime import Plug, Runtime
from openimds.store.follower import each_key

TOKEN_PATH = "/metadata/identity/oauth2/token"
INFO_PATH = "/metadata/identity/info"
PLATFORM_PATH = "/metadata/identity/getplatformmetadata"


def new_uti() -> str:
    # Entra's `uti` is 16 random bytes, base64url without padding (22 characters).
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()


def install(runtime: Runtime) -> Plug:
    settings = runtime.config.identity
    store = runtime.store
    directory = StoreDirectory(store, runtime.inventory, default_tenant(store, settings.tenant_id))
    directory.load_ids()
    # A retired key stays published while a token it signed may be valid (+ skew leeway).
    ring = KeyRing(store, retention=settings.token_lifetime + CLOCK_SKEW, clock=time.time)
    ring.load()
    policy = TokenPolicy(settings.token_lifetime, settings.issuer)
    # The one issuer (keys, cache, policy) every token source of the server shares.
    issuer = Issuer(JwtSigner(ring), TokenCache(), policy, new_uti)
    token = TokenEndpoint(directory, issuer)
    sources = build_sources(runtime, directory, issuer)
    return Plug(
        endpoints=[
            (TOKEN_PATH, token),
            (INFO_PATH, IdentityInfoEndpoint(directory)),
            (PLATFORM_PATH, PlatformMetadataEndpoint(directory)),
        ],
        admin=[
            IdentityAdmin(
                ring,
                directory,
                issuer,
                SourcesAdmin(sources.infos, runtime.bound),
                runtime.clock.now,
            )
        ],
        budgets={TokenEndpoint.name: RateLimiter(settings.rate_limit)},
        jobs=[lambda: _prune(ring), *sources.jobs],
        closers=sources.closers,
        listeners=sources.listeners,
        # Another node rotated (shared store): sign with its new key from now on.
        follows={KIND: each_key(lambda key: ring.reload())},
        # Missing ids generated in one write once serving, not on a first token request.
        warmups=[directory.warm_up],
    )


def _prune(ring: KeyRing) -> None:
    ring.prune(time.time())

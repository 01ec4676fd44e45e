"""A service receiving openimds tokens validates them with PyJWT, the way it would validate
Entra ID's: discovery document -> JWKS -> signature, audience, issuer, expiry. Rotation
(`openimds keys rotate`, as a user runs it) and a restart keep earlier tokens valid."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.clients.identity_support import SERVER_ENV
from tests.support.identity import DEMO, SYSTEM
from tests.support.server import RunningServer, start_server

pytestmark = pytest.mark.clients

TENANT = DEMO["tenantId"]
AUDIENCE = "api://orders-service"
TOKEN = f"/metadata/identity/oauth2/token?api-version=2018-02-01&resource={AUDIENCE}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path, env=SERVER_ENV)
    yield running
    running.stop()


def fetch_token(server: RunningServer, fresh: bool = False) -> str:
    r = server.get(TOKEN + ("&bypass_cache=true" if fresh else ""))
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def validate(token: str, discovery_url: str) -> dict[str, object]:
    """What a relying party does, from nothing but the discovery URL it was configured with."""
    doc = httpx.get(discovery_url).json()
    signing_key = jwt.PyJWKClient(doc["jwks_uri"], cache_keys=False).get_signing_key_from_jwt(token)
    decoded: dict[str, object] = jwt.decode(
        token,
        signing_key.key,
        algorithms=doc["id_token_signing_alg_values_supported"],
        audience=AUDIENCE,
        issuer=doc["issuer"],
        options={"require": ["exp", "iat", "nbf", "aud", "iss"]},
    )
    return decoded


def cli(server: RunningServer, *args: str) -> str:
    done = server.cli(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def discovery(server: RunningServer) -> str:
    return f"{server.admin_url}/{TENANT}/.well-known/openid-configuration"


def test_signature_audience_issuer_expiry(server: RunningServer) -> None:
    token = fetch_token(server)
    claims = validate(token, discovery(server))
    assert claims["iss"] == f"https://sts.windows.net/{TENANT}/"
    assert claims["oid"] == SYSTEM["objectId"]
    key = jwt.PyJWKClient(server.admin_url + "/discovery/keys").get_signing_key_from_jwt(token)
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key.key, algorithms=["RS256"], audience="api://someone-else")
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(token, key.key, algorithms=["RS256"], audience=AUDIENCE, issuer="https://x/")
    lifetime = int(str(claims["exp"])) - int(str(claims["iat"]))
    with pytest.raises(jwt.ExpiredSignatureError):  # the same token, seen after its exp
        jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=AUDIENCE,
            leeway=-lifetime,
            options={"verify_iat": False, "verify_nbf": False},
        )


def test_tampered_payload_is_rejected(server: RunningServer) -> None:
    header, payload, signature = fetch_token(server).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["oid"] = "00000000-0000-0000-0000-000000000000"  # pretend to be someone else
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidSignatureError):
        validate(f"{header}.{forged}.{signature}", discovery(server))


def test_old_and_new_tokens_validate_after_keys_rotate(server: RunningServer) -> None:
    before = fetch_token(server)
    out = cli(server, "keys", "rotate")
    assert out.startswith("active key: ")
    after = fetch_token(server, fresh=True)
    assert jwt.get_unverified_header(before)["kid"] != jwt.get_unverified_header(after)["kid"]
    assert jwt.get_unverified_header(after)["kid"] in out
    for token in (before, after):
        assert validate(token, discovery(server))["aud"] == AUDIENCE
    listing = cli(server, "keys", "list")
    assert listing.count("active") == 1 and listing.count("retired") == 1


def test_tokens_issued_before_a_restart_still_validate(tmp_path: Path) -> None:
    first = start_server(tmp_path, env=SERVER_ENV)
    try:
        token = fetch_token(first)
    finally:
        first.stop()
    second = start_server(tmp_path, env=SERVER_ENV, state_path=first.state_path)
    try:
        assert (
            validate(token, discovery(second))["uti"]
            == jwt.decode(token, options={"verify_signature": False})["uti"]
        )
        assert fetch_token(second) != token  # the cache is memory; the keys are not
    finally:
        second.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_issuer_set_to_the_admin_url_allows_standard_discovery(tmp_path: Path) -> None:
    """With `identity.issuer` pointing at the admin listener, iss + /.well-known/... is
    the discovery document itself, as strict OpenID Connect validators expect."""
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}/{{tenant}}/"
    env = {**SERVER_ENV, "OPENIMDS_IDENTITY_ISSUER": issuer}
    server = start_server(tmp_path, env=env, args=["--admin-listen", f"127.0.0.1:{port}"])
    try:
        token = fetch_token(server)
        iss = str(jwt.decode(token, options={"verify_signature": False})["iss"])
        assert iss == f"http://127.0.0.1:{port}/{TENANT}/"
        assert validate(token, iss + ".well-known/openid-configuration")["iss"] == iss
    finally:
        server.stop()

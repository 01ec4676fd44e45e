"""What the token-source tests share: one server running every source, the
environment `openimds env` prints for each, a clean way to apply it, and validation of a
token against the server's JWKS as a relying party does it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from openimds.identity.env_vars import STEERING
from tests.clients.identity_support import OTHER_FLAVOURS, RESOURCE, SERVER_ENV
from tests.support.identity import DEMO
from tests.support.server import RunningServer, start_server

ARC_FOLDER = Path("/var/opt/azcmagent/tokens")
# Every source on: Arc on a free port (clients read IDENTITY_ENDPOINT, so 40342 is not
# needed, and a test must not collide with an agent or another run on this machine).
ALL_SOURCES_CONFIG = """\
hosts:
  arc: {listen: "127.0.0.1:0"}
  appservice:
  azureml:
  cloudshell:
  servicefabric:
"""


def created_folders(folder: Path) -> list[Path]:
    """The folders from `folder` up that do not exist yet (to remove after the test)."""
    missing = []
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing.append(path)
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove folders a test created, deepest first, only if nothing else is in them."""
    for path in folders:
        try:
            path.rmdir()
        except OSError:
            break


def run_all_sources(tmp: Path) -> Iterator[RunningServer]:
    if os.geteuid() != 0 and not os.access(ARC_FOLDER, os.W_OK):
        # A failure, not a skip: the Arc flow is tested with the real key folder or not at all.
        pytest.fail(f"Arc's key folder {ARC_FOLDER} needs root, or to be writable by this user")
    created = created_folders(ARC_FOLDER)
    config = tmp / "sources.yaml"
    config.write_text(ALL_SOURCES_CONFIG)
    server = start_server(tmp, config=str(config), env=SERVER_ENV)
    try:
        yield server
    finally:
        server.stop()
        remove_empty(created)


def parse_dotenv(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition("=")
        values[name] = value.removeprefix('"').removesuffix('"')
    return values


def env_of(server: RunningServer, choice: str) -> dict[str, str]:
    """The variables `openimds env --host <choice>` prints, as a user would run it."""
    done = server.cli("env", "--host", choice, "--shell", "dotenv")
    assert done.returncode == 0, done.stderr
    return parse_dotenv(done.stdout)


def apply_env(values: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean environment with only `values` steering the SDKs."""
    for name in (*OTHER_FLAVOURS, *STEERING, "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def validated(server: RunningServer, token: str) -> dict[str, object]:
    """The token's claims, once its signature, audience and issuer check out against the
    server's JWKS."""
    key = jwt.PyJWKClient(server.admin_url + "/discovery/keys", cache_keys=False)
    claims: dict[str, object] = jwt.decode(
        token,
        key.get_signing_key_from_jwt(token).key,
        algorithms=["RS256"],
        audience=RESOURCE,
        issuer=f"https://sts.windows.net/{DEMO['tenantId']}/",
        options={"require": ["exp", "iat", "nbf", "aud", "iss"]},
    )
    return claims


def hosts_of(server: RunningServer) -> dict[str, dict[str, str]]:
    """The admin API's list of sources, by name."""
    answer = server.admin("GET", "/identity/hosts")
    assert answer.status_code == 200, answer.text
    return {h["name"]: h for h in answer.json()["hosts"]}

"""The admin token, in one place: from the configuration (`admin.token`,
`OPENIMDS_ADMIN_TOKEN`), else the one the first start generated and kept in the state
store. The server may generate it; the CLI only reads it, and never creates a store."""

from __future__ import annotations

import secrets
import sys

from openimds.config.model import Config
from openimds.store import Store, StoreError, read_from

SETTING = "admin_token"


class NoAdminToken(Exception):
    """No token is configured or stored; the message says how to get one."""


def server_token(config: Config, store: Store) -> str:
    """The token the admin listener accepts. Generated once when none is configured or
    stored, printed on the start that generated it (and never logged)."""
    if config.admin.token is not None:
        return config.admin.token.get_secret_value()
    existing = store.get_setting(SETTING)
    if existing is not None:
        return existing
    token = store.put_setting_once(SETTING, secrets.token_urlsafe(32))
    print(
        f"openimds: generated an admin token (kept in {config.state.path}): {token}",
        file=sys.stderr,
        flush=True,
    )
    return token


def client_token(config: Config) -> str:
    """The token a command sends: configured, else read (read-only) from the state store."""
    if config.admin.token is not None:
        return config.admin.token.get_secret_value()
    hint = (
        "set OPENIMDS_ADMIN_TOKEN (or --token), or point --state at the server's state "
        "store; a server that generated its token keeps it there"
    )
    try:
        token = read_from(config.state.path, lambda store: store.get_setting(SETTING))
    except StoreError as exc:
        raise NoAdminToken(f"no admin token: {exc} ({hint})") from None
    if token is None:
        raise NoAdminToken(f"no admin token in {config.state.path} ({hint})")
    return token

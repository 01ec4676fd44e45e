"""The admin token, in one place: from the configuration (`admin.token`,
`OPENIMDS_ADMIN_TOKEN`), else the one the first start generated and kept in the state
store. The server may generate it; the CLI only reads it, and never creates a store.

A server whose admin listener is a Unix socket also writes its token beside it
(`PATH.token`, mode 0600, removed at shutdown), so a command given only
`--admin-listen unix:PATH` finds the token of the server it talks to: whoever may read
that file (the server's user, or root) may connect to the 0600 socket anyway.
"""

from __future__ import annotations

import contextlib
import os
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


def token_file(socket_path: str) -> str:
    """Where a server on the Unix socket `socket_path` keeps its token for local commands."""
    return socket_path + ".token"


def write_token_file(socket_path: str, token: str) -> None:
    """Write the token beside the socket, owner-only from the first byte."""
    path = token_file(socket_path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # never write through a file (or link) someone else left there
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token)


def remove_token_file(socket_path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(token_file(socket_path))


def client_token(config: Config) -> str:
    """The token a command sends: configured, else the one beside the server's Unix
    socket, else read (read-only) from the state store."""
    if config.admin.token is not None:
        return config.admin.token.get_secret_value()
    socket_path = config.admin.listen.path
    if socket_path is not None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            with open(token_file(socket_path), encoding="ascii") as handle:
                found = handle.read().strip()
            if found:
                return found
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

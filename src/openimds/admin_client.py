"""How CLI commands reach a running server's admin API.

The admin URL and token come from the same configuration the server reads (file <
environment < flags); when the token was generated, it is read from the state store.
"""

from __future__ import annotations

from typing import Any

import httpx

from openimds.config import Config
from openimds.runtime import ADMIN_TOKEN_KEY
from openimds.store import StoreError, open_store


class AdminError(Exception):
    """A failed admin call, worded for the user."""


def admin_token(config: Config) -> str:
    if config.admin.token is not None:
        return config.admin.token.get_secret_value()
    try:
        store = open_store(config.state.path)
        try:
            token = store.get_setting(ADMIN_TOKEN_KEY)
        finally:
            store.close()
    except StoreError as exc:
        raise AdminError(str(exc)) from exc
    if token is None:
        raise AdminError(
            f"no admin token: set OPENIMDS_ADMIN_TOKEN or start the server once "
            f"(it keeps a generated token in {config.state.path})"
        )
    return token


def request(
    config: Config, method: str, path: str, *, json: Any = None, timeout: float = 10.0
) -> Any:
    """Call the admin API; return the decoded JSON body or raise AdminError."""
    listen = config.admin.listen
    if listen.startswith("unix:"):
        transport = httpx.HTTPTransport(uds=listen.removeprefix("unix:"))
        base = "http://openimds-admin"
    else:
        transport = httpx.HTTPTransport()
        base = f"http://{listen}"
    headers = {"Authorization": f"Bearer {admin_token(config)}"}
    try:
        with httpx.Client(transport=transport, timeout=timeout) as client:
            response = client.request(method, base + path, json=json, headers=headers)
    except httpx.HTTPError as exc:
        raise AdminError(f"cannot reach the admin API at {listen}: {exc}") from exc
    if response.status_code >= 400:
        try:
            detail = response.json()
        except ValueError:
            detail = response.text
        raise AdminError(f"admin API answered {response.status_code}: {detail}")
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:  # something else listens there
        raise AdminError(f"{listen} did not answer as the openimds admin API") from exc

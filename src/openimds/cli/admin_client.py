"""How CLI commands reach a running server's admin API.

The admin URL and token come from the same configuration the server reads (file <
environment < flags); when the token was generated, it is read from the state store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from openimds.cli.tls_pinning import UntrustedAdmin, client_context
from openimds.config import Config
from openimds.config.admin_token import NoAdminToken, client_token


class AdminError(Exception):
    """A failed admin call, worded for the user."""


def request(
    config: Config,
    method: str,
    path: str,
    *,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Any:
    """Call the admin API (with any extra `headers`, e.g. preconditions); return the
    decoded JSON body or raise AdminError."""
    listen = config.admin.listen
    try:
        token = client_token(config)
        transport, base = _transport(config)
    except (NoAdminToken, UntrustedAdmin) as exc:
        raise AdminError(str(exc)) from None
    sent = {**(headers or {}), "Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(transport=transport, timeout=timeout) as client:
            response = client.request(method, base + path, json=json, headers=sent)
    except httpx.HTTPError as exc:
        raise AdminError(f"cannot reach the admin API at {listen}: {exc}") from exc
    if response.status_code == 401:
        raise AdminError(
            "the admin API refused the token: pass --token or set OPENIMDS_ADMIN_TOKEN to the "
            "server's admin token, or --state to the server's state store"
        )
    if response.status_code >= 400:
        raise AdminError(f"{_error_text(response)} ({response.status_code})")
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:  # something else listens there
        raise AdminError(f"{listen} did not answer as the openimds admin API") from exc


def _transport(config: Config) -> tuple[httpx.HTTPTransport, str]:
    """How to reach the admin listener, and its base URL: a Unix socket, plain HTTP, or
    https with the certificate checked (cli/tls_pinning.py) before the token is sent."""
    listen = config.admin.listen
    if listen.path is not None:
        return httpx.HTTPTransport(uds=listen.path), "http://openimds-admin"
    if not config.admin.uses_tls:
        return httpx.HTTPTransport(), listen.local_url() or ""
    base = listen.local_url("https") or ""
    host = httpx.URL(base).host
    return httpx.HTTPTransport(verify=client_context(config, host, listen.port)), base


def _error_text(response: httpx.Response) -> str:
    """The sentence of an error answer (`{"error": "..."}`), else its text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return response.text.strip() or response.reason_phrase or "the admin API refused"

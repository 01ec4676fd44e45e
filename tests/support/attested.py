"""Helpers for attested-data tests: a server whose admin port is known up front (so the
signing certificate's AIA URL points at it), documents over HTTP, and the CLI."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
from pathlib import Path

from tests.support.server import RunningServer, start_server

DOCUMENT = "/metadata/attested/document"
LATEST = "2025-04-07"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_attested_server(
    tmp: Path,
    *,
    config: str | None = None,
    state_path: str | None = None,
    admin_port: int | None = None,
) -> RunningServer:
    """The AIA URL derives from the admin address, so it must not be port 0."""
    port = admin_port or free_port()
    return start_server(
        tmp, config=config, state_path=state_path, args=["--admin-listen", f"127.0.0.1:{port}"]
    )


def fetch_answer(server: RunningServer, nonce: str | None = None, version: str = LATEST) -> str:
    params = {"api-version": version}
    if nonce is not None:
        params["nonce"] = nonce
    response = server.get(DOCUMENT, params=params)
    assert response.status_code == 200, response.text
    return response.text


def signature_der(answer: str) -> bytes:
    data = json.loads(answer)
    assert data["encoding"] == "pkcs7"
    return base64.b64decode(data["signature"])


def run_cli(
    server: RunningServer, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`openimds ...` pointed at the server's admin API by the environment."""
    return server.cli(*args, stdin=stdin)

"""The admin listener over TLS: a self-signed certificate kept in the state store (its
fingerprint printed at start), or the operator's files; the CLI trusts a pinned
fingerprint, a CA file or the stored certificate, and refuses a wrong pin before it sends
the token."""

from __future__ import annotations

import hashlib
import re
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from openimds.crypto.tls_cert import issue_self_signed
from tests.support.cli import run_openimds
from tests.support.server import RunningServer, start_server

FINGERPRINT = re.compile(
    r"openimds: admin TLS certificate SHA-256 ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})"
)
SELF_SIGNED = {"OPENIMDS_ADMIN_TLS": "self-signed"}


def _printed(server: RunningServer) -> str:
    match = FINGERPRINT.search(server.output)
    assert match, server.output
    return match.group(1)


def _served(server: RunningServer) -> str:
    host, port = server.admin_url.removeprefix("https://").rsplit(":", 1)
    pem = ssl.get_server_certificate((host, int(port)))
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()


def _keys_list(server: RunningServer, **env: str) -> tuple[int, str]:
    base = {
        "OPENIMDS_ADMIN_LISTEN": server.admin_url.split("://", 1)[1],
        "OPENIMDS_ADMIN_TOKEN": server.admin_token,
        "OPENIMDS_STATE": server.state_path,
    }
    result = run_openimds("keys", "list", "--json", env={**base, **env})
    return result.returncode, result.stdout + result.stderr


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(tmp_path, env=SELF_SIGNED, args=["--admin-listen", "0.0.0.0:0"])
    yield server
    server.stop()


def test_self_signed_admin_speaks_https_and_prints_its_fingerprint(
    tls_server: RunningServer,
) -> None:
    assert tls_server.admin_url.startswith("https://0.0.0.0:")
    printed = _printed(tls_server)
    assert printed.replace(":", "") == _served(tls_server)
    with pytest.raises(httpx.HTTPError):  # plain HTTP is not answered
        httpx.get(tls_server.admin_url.replace("https://", "http://") + "/healthz")
    # Bound to every interface, but encrypted: no clear-text warning.
    assert "clear text" not in tls_server.output
    assert tls_server.get("/metadata/instance?api-version=2021-02-01").status_code == 200


def test_the_cli_trusts_a_pinned_fingerprint(tls_server: RunningServer) -> None:
    pin = _printed(tls_server)
    code, out = _keys_list(tls_server, OPENIMDS_ADMIN_FINGERPRINT=pin)
    assert code == 0, out
    assert '"keys"' in out
    code, out = _keys_list(tls_server, OPENIMDS_ADMIN_FINGERPRINT=pin.replace(":", "").lower())
    assert code == 0, out


def test_the_cli_trusts_the_certificate_kept_in_the_state_store(
    tls_server: RunningServer,
) -> None:
    code, out = _keys_list(tls_server, **SELF_SIGNED)
    assert code == 0, out


def test_a_wrong_fingerprint_is_refused_before_the_token_is_sent(
    tls_server: RunningServer,
) -> None:
    requests_before = tls_server.output.count('"admin request"')
    wrong = "AB:" * 31 + "CD"
    code, out = _keys_list(tls_server, OPENIMDS_ADMIN_FINGERPRINT=wrong)
    assert code == 1
    assert out.splitlines() == [
        f"openimds: the admin listener's certificate has SHA-256 {_printed(tls_server)}, "
        f"not the pinned {wrong}: refusing to send the token"
    ]
    assert tls_server.output.count('"admin request"') == requests_before


def test_a_plain_http_client_is_not_answered(tls_server: RunningServer) -> None:
    code, out = _keys_list(tls_server)  # no TLS setting: the CLI speaks http
    assert code == 1
    assert "cannot reach the admin API" in out or "did not answer" in out


def test_the_self_signed_certificate_survives_a_restart(tmp_path: Path) -> None:
    first = start_server(tmp_path, env=SELF_SIGNED)
    pin = _printed(first)
    first.stop()
    again = start_server(tmp_path, env=SELF_SIGNED, state_path=first.state_path)
    try:
        assert _printed(again) == pin
        code, out = _keys_list(again, OPENIMDS_ADMIN_FINGERPRINT=pin)
        assert code == 0, out
    finally:
        again.stop()


def test_certificate_files_from_the_config(tmp_path: Path) -> None:
    pair = issue_self_signed("admin.example", datetime.now(UTC))
    cert = tmp_path / "admin.crt"
    key = tmp_path / "admin.key"
    cert.write_bytes(pair.cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        pair.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = tmp_path / "openimds.yaml"
    config.write_text(f"admin:\n  tls:\n    cert_file: {cert}\n    key_file: {key}\n")
    server = start_server(tmp_path, config=str(config))
    try:
        assert _served(server) == _printed(server).replace(":", "")
        with_ca = _keys_list(server, OPENIMDS_ADMIN_CA=str(cert))
        assert with_ca[0] == 0, with_ca[1]
        with_config = run_openimds(
            "keys", "list", "--config", str(config),
            "--admin-listen", server.admin_url.split("://", 1)[1],
            env={"OPENIMDS_ADMIN_TOKEN": server.admin_token},
        )  # fmt: skip
        assert with_config.returncode == 0, with_config.stderr
    finally:
        server.stop()


def test_a_key_that_does_not_match_stops_the_start(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    cert = tmp_path / "admin.crt"
    key = tmp_path / "other.key"
    cert.write_bytes(issue_self_signed("a", now).cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        issue_self_signed("b", now).key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = tmp_path / "openimds.yaml"
    config.write_text(f"admin:\n  tls:\n    cert_file: {cert}\n    key_file: {key}\n")
    result = run_openimds("config", "check", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"openimds: admin.tls: {key} is not the key of {cert}"]


def test_plain_http_to_a_tls_listener_hints_at_the_tls_flags(tls_server: RunningServer) -> None:
    env = {
        "OPENIMDS_ADMIN_LISTEN": tls_server.admin_url.split("://", 1)[1],
        "OPENIMDS_ADMIN_TOKEN": tls_server.admin_token,
    }
    result = run_openimds("keys", "list", env=env)
    assert result.returncode == 1
    assert "pass --admin-fingerprint (printed at the server's start) or --admin-ca" in (
        result.stderr
    ), result.stderr
    assert "Traceback" not in result.stderr

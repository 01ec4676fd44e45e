"""The admin TLS settings: `self-signed` or a pair of files on the server side, a CA file
or a SHA-256 pin on the client side; errors name the setting."""

from __future__ import annotations

from pathlib import Path

from openimds.config.model import AdminTlsFiles
from tests.support.config import error_of, load

PIN = "ab:" * 31 + "cd"


def test_self_signed_from_the_environment() -> None:
    config = load(None, env={"OPENIMDS_ADMIN_TLS": "self-signed"})
    assert config.admin.tls == "self-signed"
    assert config.admin.uses_tls


def test_files_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("admin:\n  tls:\n    cert_file: /c.pem\n    key_file: /k.pem\n")
    assert load(str(path)).admin.tls == AdminTlsFiles(cert_file="/c.pem", key_file="/k.pem")


def test_plain_http_by_default() -> None:
    assert not load(None).admin.uses_tls


def test_a_pin_is_normalised_and_means_https() -> None:
    config = load(None, flags={"admin.tls_fingerprint": PIN})
    assert config.admin.tls_fingerprint == ("AB" * 31 + "CD")
    assert config.admin.uses_tls


def test_a_bad_pin_names_the_flag() -> None:
    message = error_of(None, flags={"admin.tls_fingerprint": "abc"})
    assert "--admin-fingerprint" in message
    assert "64 hex digits" in message


def test_an_unknown_tls_mode_is_refused() -> None:
    message = error_of(None, env={"OPENIMDS_ADMIN_TLS": "on"})
    assert message.endswith("admin.tls: expected self-signed or {cert_file, key_file}, got 'on'")


def test_tls_on_a_unix_socket_is_refused() -> None:
    message = error_of(
        None, env={"OPENIMDS_ADMIN_TLS": "self-signed", "OPENIMDS_ADMIN_LISTEN": "unix:/a.sock"}
    )
    assert "admin.tls" in message
    assert "TLS needs listen HOST:PORT" in message

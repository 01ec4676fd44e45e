"""Configuration files a careless hand writes: binary, endless numbers. One message naming
the file and the field, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from openimds.config import ConfigError, load_config
from openimds.config.model import AttestedSettings


def test_a_binary_file_is_not_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"server:\n  listen: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"binary\.yaml: not UTF-8 text \(byte 18\)"):
        load_config(str(path), env={})


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("server: {rate_limit: .inf}", "server.rate_limit"),
        ("server: {idle_timeout: .nan}", "server.idle_timeout"),
        ("identity: {rate_limit: .inf}", "identity.rate_limit"),
        ("events: {completion_delay: .inf}", "events.completion_delay"),
        ("events: {notice: {freeze: .inf}}", "events.notice.freeze"),
        ("attested: {cache_ttl_seconds: .inf}", "attested.cache_ttl_seconds"),
    ],
)
def test_endless_numbers_are_refused(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "inf.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env={})
    assert str(caught.value).startswith(f"{path}: {field}: expected a finite number, got ")


def test_cli_binary_file_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    result = subprocess.run(
        [sys.executable, "-m", "openimds", "config", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"openimds: invalid configuration\n{path}: not UTF-8 text (byte 0)\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("attested: {san_dns_names: [ü.example]}", "san_dns_names: not an ASCII DNS name"),
        ("attested: {san_dns_names: ['']}", "san_dns_names: not an ASCII DNS name"),
        ("attested: {san_dns_names: ['a b.example']}", "san_dns_names: not an ASCII DNS name"),
        ("attested: {issuer_base_url: 'not a url'}", "issuer_base_url: expected an ASCII http"),
        ("attested: {issuer_base_url: 'http://ex.ample/ü'}", "issuer_base_url: expected an"),
    ],
)
def test_names_a_certificate_cannot_hold_are_refused(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "attested.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env={})
    assert str(caught.value).startswith(f"{path}: attested.{problem}")


def test_ordinary_names_and_urls_pass() -> None:
    settings = load_config(
        None,
        env={},
        flags={"attested.issuer_base_url": "http://[::1]:8081/base"},
    ).attested
    assert settings.issuer_base_url == "http://[::1]:8081/base"
    names = ["metadata.azure.com", "*.metadata.example", "eastus-1.metadata.azure.com", "host"]
    assert AttestedSettings(san_dns_names=names).san_dns_names == names


def test_the_default_tenant_is_a_guid(tmp_path: Path) -> None:
    path = tmp_path / "tenant.yaml"
    path.write_text("identity: {tenant_id: 'a/b c'}\n")
    with pytest.raises(ConfigError, match=r"identity\.tenant_id: not a GUID: 'a/b c'"):
        load_config(str(path), env={})
    path.write_text("identity: {tenant_id: 7F4A1C52-2B7E-4A8E-9D61-3C0F5B2D9E10}\n")
    tenant = load_config(str(path), env={}).identity.tenant_id
    assert tenant == "7f4a1c52-2b7e-4a8e-9d61-3c0f5b2d9e10"

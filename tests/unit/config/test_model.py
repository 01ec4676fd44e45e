"""The settings model: finite numbers only, names a certificate can hold, GUID tenants, the
`identity` settings and their environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from openimds.config import ConfigError, load_config
from openimds.config.model import AttestedSettings


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


def test_identity_settings_defaults_and_environment() -> None:
    settings = load_config(None, env={}).identity
    assert settings.token_lifetime == 86400
    assert settings.issuer == "https://sts.windows.net/{tenant}/"
    assert settings.rate_limit == 20.0
    env = {"OPENIMDS_IDENTITY_RATE_LIMIT": "0", "OPENIMDS_IDENTITY_TOKEN_LIFETIME": "3600"}
    changed = load_config(None, env=env).identity
    assert (changed.rate_limit, changed.token_lifetime) == (0.0, 3600)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENIMDS_IDENTITY_ISSUER": "sts.windows.net"}, r"an http\(s\) URL"),
        ({"OPENIMDS_IDENTITY_TOKEN_LIFETIME": "60"}, "greater than or equal to 900"),
    ],
)
def test_bad_identity_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, env=env)

"""The `proxy` section: its checks, its secret kept out of messages and `config show`,
and VMs without addresses when the proxy names every caller's VM."""

from __future__ import annotations

import ipaddress
import json

import pytest
from pydantic import SecretStr

from openimds.config import effective
from tests.support.config import WriteFile, error_of, load

SECRET = "proxy-secret-0123456789"
TWO_VMS = """\
vms:
  - instance: {compute: {name: a}}
  - instance: {compute: {name: b}}
"""


def test_off_by_default() -> None:
    proxy = load(None).proxy
    assert not proxy.enabled
    assert proxy.max_age == 60
    assert (proxy.vm_header, proxy.timestamp_header, proxy.signature_header) == (
        "X-OpenIMDS-VM",
        "X-OpenIMDS-Timestamp",
        "X-OpenIMDS-Signature",
    )


def test_the_secret_from_the_environment_is_redacted_in_show(write: WriteFile) -> None:
    path = write("proxy:\n  sources: [10.0.0.5, 10.1.0.0/16]\n")
    config = load(path, env={"OPENIMDS_PROXY_SECRET": SECRET})
    assert config.proxy.secret == SecretStr(SECRET)
    assert config.proxy.sources == [
        ipaddress.ip_network("10.0.0.5/32"),
        ipaddress.ip_network("10.1.0.0/16"),
    ]
    shown = json.dumps(effective(config))
    assert SECRET not in shown
    assert effective(config)["proxy"]["secret"] == "***"


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ("secret: too-short", "proxy.secret: the proxy secret must be at least 16"),
        (f"secret: {SECRET}\n  secret_file: /s", "give secret or secret_file, not both"),
        ("vm_header: 'X VM'", "proxy.vm_header: not an HTTP header name"),
        ("signature_header: Metadata", "a header IMDS reads for its own rules"),
        ("timestamp_header: x-openimds-vm", "must differ"),
        ("sources: [10.0.0.300]", "proxy.sources[0]"),
        ("max_age: -1", "proxy.max_age: input should be greater than or equal to 0"),
    ],
)
def test_bad_settings(write: WriteFile, section: str, problem: str) -> None:
    message = error_of(write(f"proxy:\n  {section}\n"))
    assert problem in message
    assert "too-short" not in message  # a secret is never echoed


def test_vms_need_addresses_unless_the_proxy_names_every_caller(write: WriteFile) -> None:
    assert "every VM must list the `addresses`" in error_of(write(TWO_VMS))
    # A proxy only for some callers: the others are still resolved by address.
    partial = TWO_VMS + f"proxy:\n  secret: {SECRET}\n  sources: [10.0.0.5]\n"
    assert "every VM must list the `addresses`" in error_of(write(partial))
    config = load(write(TWO_VMS + f"proxy:\n  secret: {SECRET}\n"))
    assert config.proxy.proxy_only
    assert [vm.display_name for vm in config.vms] == ["a", "b"]

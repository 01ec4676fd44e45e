"""How a bad configuration is worded: one line per problem, naming the file and the
field as written, with what was expected and never a secret."""

from __future__ import annotations

import pytest

from tests.support.config import WriteFile, error_of


def test_unknown_key_in_shorthand_reads_as_written(write: WriteFile) -> None:
    path = write("instance:\n  compute:\n    vmsize: Standard_B1s\n")
    message = error_of(path)
    assert message.startswith(
        f"{path}: instance.compute.vmsize: unknown field 'vmsize' (did you mean 'vmSize'?); "
        "allowed: additionalCapabilities, azEnvironment,"
    )
    assert "vms.0" not in message
    assert "vms[0]" not in message
    assert len(message.splitlines()) == 1


def test_unknown_key_in_a_vms_list(write: WriteFile) -> None:
    path = write("vms:\n  - instance:\n      compute:\n        vmsize: x\n")
    assert error_of(path).startswith(f"{path}: vms[0].instance.compute.vmsize: unknown field")


def test_unknown_top_level_key_suggests_vm_keys_too(write: WriteFile) -> None:
    message = error_of(write("instnace:\n  compute: {}\n"))
    assert "unknown field 'instnace' (did you mean 'instance'?)" in message
    assert "allowed: " in message
    assert "server" in message.split("allowed: ")[1]


@pytest.mark.parametrize(
    ("text", "where", "explanation"),
    [
        ("instance:\n  compute: 5\n", "instance.compute", "expected a mapping of fields, got 5"),
        ("instance: [a]\n", "instance", "expected a mapping of fields, got a list"),
        ("server:\n  rate_limit: fast\n", "server.rate_limit", "expected a number, got 'fast'"),
        ("server:\n  rate_limit: -1\n", "server.rate_limit", "greater than or equal to 0"),
        ("server:\n  access_log: maybe\n", "server.access_log", "expected true or false"),
        (
            "server:\n  log_level: loud\n",
            "server.log_level",
            "expected one of 'debug', 'info', 'warning' or 'error', got 'loud'",
        ),
        ("addresses: [not-an-ip]\n", "addresses[0]", "expected an IPv4 or IPv6 address"),
        ("instance:\n  network:\n    interface: x\n", "instance.network.interface", "a list"),
        (
            "vms:\n  - {name: a}\n  - {name: a}\n",
            "vms",
            "VM names must be unique; repeated: a",
        ),
        (
            "vms:\n  - {name: a}\n  - {name: b}\n",
            "vms",
            "every VM must list the `addresses` it calls from",
        ),
        (
            "instance:\n  compute:\n    customData: abc\n",
            "instance.compute.customData",
            "Azure never serves customData",
        ),
    ],
)
def test_wrong_values(write: WriteFile, text: str, where: str, explanation: str) -> None:
    path = write(text)
    message = error_of(path)
    assert message.startswith(f"{path}: {where}: ")
    assert explanation in message
    assert "Traceback" not in message


def test_several_problems_one_line_each(write: WriteFile) -> None:
    path = write("server:\n  listen: nowhere\n  rate_limit: x\ninstance:\n  compute: {vmsize: x}\n")
    lines = error_of(path).splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_secrets_are_not_echoed(write: WriteFile) -> None:
    path = write("admin:\n  token: hunter2\n")
    message = error_of(path)
    assert "hunter2" not in message
    assert "at least 16 characters" in message
    assert "hunter2" not in error_of(None, env={"OPENIMDS_ADMIN_TOKEN": "hunter2"})

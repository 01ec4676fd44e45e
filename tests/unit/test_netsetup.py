"""`net up/down` without root only says what to run (the real run is in tests/integration)."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from openimds import netsetup
from openimds.cli.main import main


@pytest.mark.parametrize(("action", "verb"), [("up", "add"), ("down", "del")])
def test_without_root_it_prints_the_command(
    monkeypatch: pytest.MonkeyPatch, action: str, verb: str
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    ok, message = netsetup.change(action)
    assert not ok
    assert message == f"this needs root; run: sudo ip address {verb} 169.254.169.254/32 dev lo"
    result = CliRunner().invoke(main, ["net", action])
    assert result.exit_code == 1
    assert f"sudo ip address {verb} 169.254.169.254/32 dev lo" in result.output


def test_command_shape() -> None:
    assert netsetup.command("up") == ["ip", "address", "add", "169.254.169.254/32", "dev", "lo"]
    assert netsetup.command("down") == ["ip", "address", "del", "169.254.169.254/32", "dev", "lo"]


def test_the_wireserver_address_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert netsetup.command("up", netsetup.WIRESERVER_HOST) == [
        "ip",
        "address",
        "add",
        "168.63.129.16/32",
        "dev",
        "lo",
    ]
    result = CliRunner().invoke(main, ["net", "up", "--wireserver"])
    assert result.exit_code == 1
    assert "sudo ip address add 169.254.169.254/32 dev lo" in result.output
    assert "sudo ip address add 168.63.129.16/32 dev lo" in result.output

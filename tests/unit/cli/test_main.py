"""`openimds config check|show|schema` as a user runs them: exit 2, one message on stderr,
never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run_openimds
from tests.support.config import FIVE_LINE_VM, write_file
from tests.support.paths import CONFIG_SCHEMA


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("instance:\n  compute:\n    vmsize: x\n", "instance.compute.vmsize: unknown field"),
        ("server: {listen: [1\n", "not valid YAML or JSON"),
        ("name: a\nvms: []\n", "give either a `vms` list or one VM's keys (name), not both"),
        ("server:\n  rate_limit: fast\n", "server.rate_limit: expected a number, got 'fast'"),
    ],
)
def test_config_check_bad_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write_file(tmp_path, text, "bad.yaml")
    result = run_openimds("config", "check", "--config", path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"openimds: invalid configuration\n{path}")
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_config_check_missing_file(tmp_path: Path) -> None:
    result = run_openimds("config", "check", "--config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert "absent.yaml: cannot read: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_config_check_good_file_and_show(tmp_path: Path) -> None:
    path = write_file(tmp_path, FIVE_LINE_VM)
    assert run_openimds("config", "check", "--config", path).stdout == "ok: 1 VM(s)\n"
    shown = run_openimds(
        "config",
        "show",
        "--format",
        "json",
        "--config",
        path,
        env={"OPENIMDS_RATE_LIMIT": "9", "OPENIMDS_ADMIN_TOKEN": "x" * 20},
    )
    data = json.loads(shown.stdout)
    assert data["server"]["rate_limit"] == 9.0
    assert data["admin"]["token"] == "***"
    assert data["vms"][0]["instance"]["compute"]["name"] == "tiny"
    assert "x" * 20 not in shown.stdout


def test_config_schema_prints_the_shipped_schema() -> None:
    assert run_openimds("config", "schema").stdout == CONFIG_SCHEMA.read_text()


def test_config_check_binary_file_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    result = run_openimds("config", "check", "--config", str(path))
    assert result.returncode == 2
    assert result.stderr == f"openimds: invalid configuration\n{path}: not UTF-8 text (byte 0)\n"

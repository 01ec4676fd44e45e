"""Configuration files a careless hand writes: binary, endless numbers. One message naming
the file and the field, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from openimds.config import ConfigError, load_config


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

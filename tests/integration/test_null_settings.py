"""A setting written as `null` in a file means "left out": every command takes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.server import start_server


def _openimds(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMDS_")}
    return subprocess.run(
        [sys.executable, "-m", "openimds", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_identity_tenant_id_null(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("identity:\n  tenant_id: null\n")
    for command in (["config", "check"], ["config", "show"]):
        result = _openimds(*command, "--config", str(config))
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    server = start_server(tmp_path, config=str(config))
    try:
        assert server.get("/metadata/instance?api-version=2021-02-01").status_code == 200
    finally:
        server.stop()

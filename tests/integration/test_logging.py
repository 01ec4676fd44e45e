"""The access log and the log level, read from the real server's output."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.support.server import RunningServer, start_server

DOC = "/metadata/instance?api-version=2021-02-01"
TOKEN = "very-secret-admin-token-0123456789"


def _json_lines(output: str) -> list[dict[str, Any]]:
    lines = []
    for line in output.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))  # every structured line is valid JSON
    return lines


def _access(output: str) -> list[dict[str, Any]]:
    return [e for e in _json_lines(output) if e.get("event") == "access"]


def _wait_for_access(running: RunningServer, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = _access(running.output)
        if len(lines) >= count:
            return lines
        time.sleep(0.1)
    raise AssertionError(f"expected {count} access lines:\n{running.output}")


def test_one_structured_line_per_request_without_secrets(tmp_path: Path) -> None:
    config = tmp_path / "vm.yaml"
    config.write_text("name: vm.web_1\ninstance: {compute: {name: x}}\n")
    running = start_server(tmp_path, config=str(config), admin_token=TOKEN)
    try:
        running.get(DOC + "&nonce=nonce-secret-42")
        running.get(DOC, metadata=False)
        running.get('/metadata/we"ird\\path?api-version=2021-02-01')
        assert running.admin("GET", "/vms").status_code == 200
        lines = _wait_for_access(running, 3)
        assert len(lines) == 3
        first, missing, weird = lines
        assert first["method"] == "GET"
        assert first["path"] == "/metadata/instance"
        assert first["status"] == 200
        assert first["vm"] == "vm.web_1"
        assert first["level"] == "info"
        assert isinstance(first["ms"], float)
        assert first["ms"] >= 0
        assert first["peer"] == "127.0.0.1"
        assert first["ts"].endswith("Z")
        assert missing["status"] == 400
        assert weird["path"] == "/metadata/we%22ird\\path"  # as sent, still valid JSON
        assert weird["status"] == 404
    finally:
        assert running.stop() == 0
    output = running.output
    assert "nonce-secret-42" not in output  # query strings are not logged
    assert TOKEN not in output
    assert "Authorization" not in output


def test_no_access_log_flag(tmp_path: Path) -> None:
    running = start_server(tmp_path, args=["--no-access-log"])
    try:
        for _ in range(3):
            assert running.get(DOC).status_code == 200
    finally:  # stopping flushes the access log
        running.stop()
    assert _access(running.output) == []
    assert any(e["level"] == "info" for e in _json_lines(running.output))


def test_log_level_warning_keeps_only_warnings_and_errors(tmp_path: Path) -> None:
    running = start_server(tmp_path, args=["--log-level", "warning"])
    try:
        assert running.get(DOC).status_code == 200
    finally:  # stopping flushes what would have been logged
        running.stop()
    levels = {e["level"] for e in _json_lines(running.output)}
    assert levels <= {"warning", "error", "critical"}
    assert "openimds: metadata on" in running.output  # the ready line is not a log line


def test_access_log_is_flushed_on_sigterm(tmp_path: Path) -> None:
    running = start_server(tmp_path)
    try:
        assert running.get(DOC).status_code == 200
    finally:
        code = running.stop()  # right away: before the once-a-second flush
    assert code == 0
    assert len(_access(running.output)) == 1

"""The admin listener in the log: one line per request (failed logins included, no token,
no query string), and a warning when it is reachable from other hosts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import RunningServer, start_server

TOKEN = "admin-log-token-0123456789-secret"
READY = "openimds: metadata on "


def log_lines(output: str) -> list[str]:
    """Every line but the readiness line, which is no log line (docs/http.md)."""
    return [line for line in output.splitlines() if line and not line.startswith(READY)]


def admin_lines(running: RunningServer, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:
        found = [
            entry
            for entry in map(json.loads, log_lines(running.output))
            if entry.get("logger") == "openimds.admin" and entry.get("event") == "admin request"
        ]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_one_line_per_admin_request_without_secrets(tmp_path: Path) -> None:
    running = start_server(tmp_path, admin_token=TOKEN)
    try:
        assert running.admin("GET", "/vms?secret-query=42").status_code == 200
        refused = httpx.get(running.admin_url + "/vms", headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 401
        assert httpx.get(running.admin_url + "/healthz").status_code == 200
        ok, failed, health = admin_lines(running, 3)
    finally:
        running.stop()
    assert ok["method"] == "GET"
    assert ok["path"] == "/vms"
    assert ok["status"] == 200
    assert ok["peer"] == "127.0.0.1"
    assert isinstance(ok["ms"], float) and ok["ms"] >= 0
    assert ok["level"] == "info"
    assert (failed["path"], failed["status"]) == ("/vms", 401)
    assert health["status"] == 200
    output = running.output
    assert TOKEN not in output
    assert "nope" not in output
    assert "secret-query" not in output


def test_a_warning_when_the_admin_listener_is_reachable_from_other_hosts(tmp_path: Path) -> None:
    running = start_server(tmp_path, args=["--admin-listen", "0.0.0.0:0"])
    running.stop()
    entries = [json.loads(line) for line in log_lines(running.output)]
    warnings = [e for e in entries if e["level"] == "warning" and "admin listener" in e["event"]]
    assert len(warnings) == 1
    assert "reachable from other hosts without TLS" in warnings[0]["event"]


def test_no_warning_on_loopback(tmp_path: Path) -> None:
    running = start_server(tmp_path)
    running.stop()
    assert "reachable from other hosts" not in running.output

"""The request journal end to end: what the listener received shows through the admin
API and `openimds requests` (per VM, following), secrets redacted; off with size 0."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.cli import clean_environment
from tests.support.server import RunningServer, server_fixture, start_server

NAME = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"
TOKEN = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"


server = server_fixture("server")


def test_admin_api_shows_what_was_asked(server: RunningServer) -> None:
    server.admin("DELETE", "/requests")
    server.get(NAME, headers={"X-Trace": "one"})
    server.get(NAME, metadata=False)
    token = server.get(TOKEN)
    assert token.status_code == 200
    answer = server.admin("GET", "/requests?vm=demo-vm").json()
    entries = answer["requests"]
    assert [(e["path"], e["status"]) for e in entries] == [
        ("/metadata/instance/compute/name", 200),
        ("/metadata/instance/compute/name", 400),
        ("/metadata/identity/oauth2/token", 200),
    ]
    first = entries[0]
    assert first["query"] == {"api-version": "2021-02-01", "format": "text"}
    assert first["headers"]["Metadata"] == "true" and first["headers"]["X-Trace"] == "one"
    assert "Metadata" not in entries[1]["headers"]
    # No answer body is kept: the token appears nowhere in the journal.
    assert token.json()["access_token"] not in server.admin("GET", "/requests").text
    assert server.admin("GET", "/requests?vm=nobody").status_code == 404
    assert server.admin("GET", "/requests?limit=x").status_code == 400


def _next_line(follower: subprocess.Popen[str], poke: Callable[[], object]) -> str:
    """The follower's next line, asking the server (`poke`) every half second until it
    has one: the follower may take a while to start on a busy machine, and a request
    sent before its first call would never be printed."""
    assert follower.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        poke()
        ready, _, _ = select.select([follower.stdout], [], [], 0.5)
        if ready:
            return follower.stdout.readline()
    raise AssertionError("the follower printed nothing in 30 s")


def test_cli_lists_and_follows(server: RunningServer) -> None:
    server.admin("DELETE", "/requests")
    server.get(NAME)
    listed = server.cli("requests", "--vm", "demo-vm")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("\n") == 1
    assert "demo-vm  200  GET /metadata/instance/compute/name?api-version=2021-02-01" in (
        listed.stdout
    )
    assert "(Metadata: true)" in listed.stdout
    env = clean_environment(
        {
            "OPENIMDS_ADMIN_LISTEN": server.admin_url.removeprefix("http://"),
            "OPENIMDS_ADMIN_TOKEN": server.admin_token,
        }
    )
    follower = subprocess.Popen(
        [sys.executable, "-m", "openimds", "requests", "--follow", "--limit", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = _next_line(follower, lambda: server.get(NAME, metadata=False))
    finally:
        follower.terminate()
        follower.wait(timeout=10)
        if follower.stdout is not None:
            follower.stdout.close()
    assert "400  GET /metadata/instance/compute/name" in line and "no Metadata header" in line


def test_journal_off(tmp_path: Path) -> None:
    running = start_server(tmp_path, env={"OPENIMDS_JOURNAL_SIZE": "0"})
    try:
        running.get(NAME)
        answer = running.admin("GET", "/requests")
        assert answer.status_code == 409
        assert "journal is off" in answer.json()["error"]
    finally:
        running.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_follow_reconnects_when_the_server_restarts(tmp_path: Path) -> None:
    admin = f"127.0.0.1:{_free_port()}"
    state = str(tmp_path / "state.db")
    first = start_server(tmp_path, args=["--admin-listen", admin], state_path=state)
    env = clean_environment(
        {"OPENIMDS_ADMIN_LISTEN": admin, "OPENIMDS_ADMIN_TOKEN": first.admin_token}
    )
    follower = subprocess.Popen(
        [sys.executable, "-m", "openimds", "requests", "--follow", "--limit", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    second = None
    try:
        _next_line(follower, lambda: first.get(NAME))  # it follows the first server
        first.stop()
        time.sleep(2)  # it notices, and keeps trying
        assert follower.poll() is None
        second = start_server(tmp_path, args=["--admin-listen", admin], state_path=state)
        # Lines the first server's requests left in the pipe first, then the second's.
        lines = [_next_line(follower, lambda: second.get(NAME, metadata=False))]
        while "400  GET" not in lines[-1] and len(lines) < 100:
            lines.append(_next_line(follower, lambda: second.get(NAME, metadata=False)))
        assert "400  GET /metadata/instance/compute/name" in lines[-1], lines
    finally:
        follower.terminate()
        _, errors = follower.communicate(timeout=10)
        if second is not None:
            second.stop()
    assert f"openimds: cannot reach the admin API at {admin}" in errors
    assert "reconnecting (Ctrl-C stops)" in errors
    assert errors.count("reconnecting") == 1  # said once, not at every try
    assert f"openimds: reconnected to the admin API at {admin}" in errors

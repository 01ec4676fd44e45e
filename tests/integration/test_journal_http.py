"""The request journal end to end: what the listener received shows through the admin
API and `openimds requests` (per VM, following), secrets redacted; off with size 0."""

from __future__ import annotations

import subprocess
import sys
import time
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
    assert server.admin("GET", "/requests?vm=nobody").status_code == 400
    assert server.admin("GET", "/requests?limit=x").status_code == 400


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
        time.sleep(1.5)  # the follower has read the journal's end
        server.get(NAME, metadata=False)
        assert follower.stdout is not None
        line = follower.stdout.readline()
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

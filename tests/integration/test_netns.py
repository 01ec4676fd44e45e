"""`openimds net up/down` and serving on 169.254.169.254:80, inside a network namespace
the test creates, so the host's interfaces are never touched."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import start_server

pytestmark = pytest.mark.root

FETCH = """
import urllib.request
request = urllib.request.Request(
    "http://169.254.169.254/metadata/instance?api-version=2021-02-01",
    headers={"Metadata": "true"},
)
with urllib.request.urlopen(request, timeout=5) as response:
    print(response.read().decode())
"""


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("this test creates a network namespace and must run as root")
    name = f"openimds-test-{secrets.token_hex(4)}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _net(ns: str, action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "openimds", "net", action],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _lo_has_imds(ns: str | None) -> bool:
    where = ["-n", ns] if ns else []
    return "169.254.169.254/32" in _ip(*where, "-o", "address", "show", "dev", "lo")


def test_net_up_serve_fetch_net_down(netns: str, tmp_path: Path) -> None:
    host_before = _lo_has_imds(None)
    up = _net(netns, "up")
    assert up.returncode == 0, up.stderr
    assert "added to lo" in up.stdout + up.stderr
    assert _lo_has_imds(netns)
    again = _net(netns, "up")
    assert again.returncode == 0
    assert "already on" in again.stdout + again.stderr

    running = start_server(
        tmp_path,
        prefix=["ip", "netns", "exec", netns],
        args=["--listen", "169.254.169.254:80"],
    )
    try:
        assert running.metadata_url == "http://169.254.169.254:80"
        fetched = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c", FETCH],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert json.loads(fetched.stdout)["compute"]["name"] == "demo-vm"
    finally:
        assert running.stop() == 0

    down = _net(netns, "down")
    assert down.returncode == 0, down.stderr
    assert "removed from lo" in down.stdout + down.stderr
    assert not _lo_has_imds(netns)
    again = _net(netns, "down")
    assert again.returncode == 0
    assert "already off" in again.stdout + again.stderr
    assert _lo_has_imds(None) == host_before  # the host was never touched


GOAL_STATE = """
import urllib.request
with urllib.request.urlopen("http://168.63.129.16/machine/?comp=goalstate", timeout=5) as r:
    print(r.read().decode())
"""


def test_net_up_wireserver_serves_the_guest_plane_there(netns: str, tmp_path: Path) -> None:
    up = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            netns,
            sys.executable,
            "-m",
            "openimds",
            "net",
            "up",
            "--wireserver",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert up.returncode == 0, up.stderr
    addresses = _ip("-n", netns, "-o", "address", "show", "dev", "lo")
    assert "168.63.129.16/32" in addresses and "169.254.169.254/32" in addresses
    running = start_server(
        tmp_path,
        prefix=["ip", "netns", "exec", netns],
        args=["--listen", "169.254.169.254:80", "--wireserver-listen", "168.63.129.16:80"],
    )
    try:
        fetched = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c", GOAL_STATE],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "<Incarnation>1</Incarnation>" in fetched.stdout
        # The goal state's links name the address the guest used.
        assert "http://168.63.129.16:80/machine/" in fetched.stdout
    finally:
        assert running.stop() == 0
    assert "168.63.129.16/32" not in _ip("-o", "address", "show", "dev", "lo")  # host untouched

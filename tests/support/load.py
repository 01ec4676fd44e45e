"""Holding many connections against a running server, and reading what they cost it.

Connections come from many loopback source addresses (127.0.x.y: all of 127.0.0.0/8 is
loopback on Linux), as a fleet's VMs would, so neither the per-source cap nor the
ephemeral ports of one source address are what a test measures.
"""

from __future__ import annotations

import os
import resource
import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit


def raise_open_files(wanted: int) -> None:
    """This process may hold `wanted` descriptors (the soft limit raised as needed)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise RuntimeError(f"the open-file hard limit {hard} is below {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def sources(first: int, count: int) -> Iterator[str]:
    """`count` loopback addresses from 127.0.<first / 250>.<first % 250 + 2> on."""
    for n in range(first, first + count):
        yield f"127.0.{n // 250}.{n % 250 + 2}"


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def open_idle(
    url: str, count: int, *, per_source: int, first_source: int = 0
) -> list[socket.socket]:
    """`count` connections that send nothing, `per_source` from each source address."""
    target = address(url)
    addresses = list(sources(first_source, -(-count // per_source)))
    return [
        socket.create_connection(target, timeout=10, source_address=(addresses[n // per_source], 0))
        for n in range(count)
    ]


def closed_by_peer(held: list[socket.socket]) -> int:
    """How many of `held` the server has closed or reset (readable with nothing sent)."""
    poller = select.poll()
    for sock in held:
        poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
    return len(poller.poll(0))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid` (VmRSS in /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def wait_for_fds(pid: int, at_least: int, timeout: float = 20.0) -> int:
    """Wait (bounded) until `pid` holds `at_least` descriptors; the count reached."""
    deadline = time.monotonic() + timeout
    count = open_fds(pid)
    while count < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
        count = open_fds(pid)
    return count


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

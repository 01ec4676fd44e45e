"""Slow-header clients, run as their own process so their work does not skew what the
test process measures: `python -m tests.support.slow_heads URL COUNT SECONDS`.

Each connection sends a request line, then one header line a second, never ending the
head. After SECONDS it prints JSON: how many were opened, how many got a 408 and were
closed, and after how many seconds the last one went.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time

from tests.support.load import address, raise_open_files, sources

PER_SOURCE = 50
FIRST_SOURCE = 1000  # clear of the idle connections' addresses


def run(url: str, count: int, seconds: float) -> dict[str, object]:
    raise_open_files(count + 256)
    target = address(url)
    addresses = list(sources(FIRST_SOURCE, -(-count // PER_SOURCE)))
    open_: dict[socket.socket, bytes] = {}
    for n in range(count):
        sock = socket.create_connection(
            target, timeout=10, source_address=(addresses[n // PER_SOURCE], 0)
        )
        sock.sendall(b"GET /metadata/instance?api-version=2021-02-01 HTTP/1.1\r\n")
        sock.setblocking(False)
        open_[sock] = b""
    started = time.monotonic()
    print("ready", flush=True)
    timed_out, other, last = 0, 0, 0.0
    line = 0
    while time.monotonic() - started < seconds:
        time.sleep(1.0)
        line += 1
        for sock in list(open_):
            with contextlib.suppress(OSError):  # a reset shows when draining
                sock.send(b"X-Slow-%d: %d\r\n" % (line, line))
            gone, answer = _drain(sock, open_[sock])
            open_[sock] = answer
            if gone:
                del open_[sock]
                sock.close()
                last = time.monotonic() - started
                if answer.startswith(b"HTTP/1.1 408 "):
                    timed_out += 1
                else:
                    other += 1
    for sock in open_:
        sock.close()
    return {
        "opened": count,
        "timed_out": timed_out,
        "other": other,
        "still_open": len(open_),
        "last_closed_after": round(last, 2),
    }


def _drain(sock: socket.socket, answer: bytes) -> tuple[bool, bytes]:
    """Read what the server sent; (closed by the server, everything read so far)."""
    while True:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return False, answer
        except OSError:
            return True, answer
        if not chunk:
            return True, answer
        answer += chunk


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))), flush=True)

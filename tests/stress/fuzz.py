"""Fuzz the metadata listener of a real server: `scripts/fuzz [--requests N] [--seconds S]`.

Generated requests (tests/stress/cases.py) go over real sockets, one connection per case,
from several threads. The run passes when no answer is a 5xx, every answer is well-formed
HTTP, no connection hangs, the server neither crashes nor logs a traceback or an error,
and after a settle period its memory and descriptors are back to their baseline (taken
after a warm-up that fills the answer caches). Prints a JSON summary; exit status 1 on a
failure.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.stress.cases import case
from tests.stress.common import Usage, log_problems, statuses
from tests.support.load import address
from tests.support.server import start_server

RSS_TOLERANCE = 0.05  # of the baseline: allocator slack, not growth per request
RSS_SLACK = 2 * 1024 * 1024  # bytes; a fixed allowance for a small baseline
WARM_UP = 3000  # cases before the baseline is taken


@dataclass
class Tally:
    requests: int = 0
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    hung: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def exchange(target: tuple[str, int], data: bytes, timeout: float = 10.0) -> bytes | None:
    """Send `data`, half-close, read until the server closes; None if it never does."""
    with socket.create_connection(target, timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server hung up on a bad request before reading it all
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        except TimeoutError:
            return None
    return b"".join(chunks)


def _one(target: tuple[str, int], seed: int, tally: Tally) -> None:
    kind, data, count = case(random.Random(seed))
    answer = exchange(target, data)
    found = statuses(answer) if answer else []
    with tally.lock:
        tally.cases += 1
        tally.requests += count
        tally.kinds[kind] += 1
        sample = f"seed {seed}: {data[:200]!r}"
        if answer is None:
            tally.hung.append(sample)
        elif found is None:
            tally.malformed.append(f"{sample} -> {answer[:200]!r}")
        else:
            tally.statuses.update(found)
            if any(status >= 500 for status in found):
                tally.server_errors.append(f"{sample} -> {answer[:300]!r}")


def drive(url: str, requests: int, seconds: float, seed: int, threads: int) -> Tally:
    """Run cases until `requests` requests were sent or `seconds` passed."""
    target, tally = address(url), Tally()
    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(threads) as pool:
        next_seed = seed
        while tally.requests < requests and time.monotonic() < deadline:
            batch = [pool.submit(_one, target, next_seed + n, tally) for n in range(500)]
            next_seed += len(batch)
            for done in batch:
                done.result()
    return tally


def run(requests: int, seconds: float, seed: int, threads: int, settle: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="openimds-fuzz-") as tmp:
        server = start_server(Path(tmp), args=["--no-access-log"])
        pid = server.process.pid
        try:
            drive(server.metadata_url, WARM_UP, seconds, seed + 10**9, threads)
            time.sleep(settle)
            before = Usage.of(pid)
            started = time.monotonic()
            tally = drive(server.metadata_url, requests, seconds, seed, threads)
            elapsed = time.monotonic() - started
            time.sleep(settle)  # lingering closes end, the next ticks drop idle peers
            alive = server.process.poll() is None
            after = Usage.of(pid) if alive else Usage(0, 0)
        finally:
            server.stop()
        problems = log_problems(server.output)
    return _summary(tally, elapsed, alive, before, after, problems)


def _summary(
    tally: Tally, elapsed: float, alive: bool, before: Usage, after: Usage, problems: list[str]
) -> dict[str, object]:
    allowed = max(int(before.rss * RSS_TOLERANCE), RSS_SLACK)
    growth = after.rss - before.rss
    five = sum(n for status, n in tally.statuses.items() if status >= 500)
    ok = (
        alive
        and five == 0
        and not tally.malformed
        and not tally.hung
        and not problems
        and growth <= allowed
        and after.fds <= before.fds
    )
    return {
        "ok": ok,
        "requests": tally.requests,
        "connections": tally.cases,
        "seconds": round(elapsed, 1),
        "kinds": dict(tally.kinds),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "answers_5xx": five,
        "malformed_answers": len(tally.malformed),
        "hung_connections": len(tally.hung),
        "server_crashed": not alive,
        "log_problems": len(problems),
        "rss_baseline": before.rss,
        "rss_after": after.rss,
        "rss_growth": growth,
        "rss_growth_allowed": allowed,
        "fds_baseline": before.fds,
        "fds_after": after.fds,
        "examples": (tally.server_errors + tally.malformed + tally.hung + problems)[:10],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="requests to send")
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same requests")
    parser.add_argument("--threads", type=int, default=8, help="concurrent connections")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before measuring")
    args = parser.parse_args(argv)
    summary = run(args.requests, args.seconds, args.seed, args.threads, args.settle)
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

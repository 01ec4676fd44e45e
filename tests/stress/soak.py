"""Soak a real server with a mix of every endpoint: `scripts/soak [--minutes M] [--rate R]`.

First the maximum rate of the mix is measured (a few seconds, unpaced, the same client
threads), then the mix runs at 80% of it (or --rate) for the duration. Beside it, every
two seconds an event is scheduled through the admin API and approved by the VM. Reported
per window: requests, p50 and p99, answers other than the intended ones, the server's RSS
and open descriptors. The run passes with no unintended answer, RSS growth after the
warm-up under 5%, and no descriptor growth. Prints JSON; exit status 1 on a failure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.stress.common import Usage, log_problems
from tests.support.load import percentile
from tests.support.server import RunningServer, start_server

API = "api-version=2021-02-01"
TOKEN = (
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net"
)
# (name, weight, target, Metadata header, the status it is meant to get)
MIX: list[tuple[str, int, Callable[[random.Random], str], bool, int]] = [
    ("instance", 30, lambda r: f"/metadata/instance?{API}", True, 200),
    ("leaf", 30, lambda r: f"/metadata/instance/compute/name?{API}&format=text", True, 200),
    ("token", 10, lambda r: TOKEN, True, 200),
    ("fresh-token", 3, lambda r: TOKEN + "&bypass_cache=true", True, 200),
    (
        "attested",
        5,
        lambda r: f"/metadata/attested/document?{API}&nonce={r.randrange(10**10)}",
        True,
        200,
    ),
    ("events", 10, lambda r: f"/metadata/scheduledevents?{API}", True, 200),
    ("no-header", 6, lambda r: f"/metadata/instance?{API}", False, 400),
    ("not-found", 6, lambda r: f"/metadata/nothing?{API}", True, 404),
]
RSS_GROWTH = 0.05
EVENTS = "/metadata/scheduledevents?api-version=2020-07-01"


@dataclass
class Window:
    latencies: list[float] = field(default_factory=list)
    unintended: list[str] = field(default_factory=list)


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.window = Window()

    def note(self, seconds: float, problem: str | None) -> None:
        with self.lock:
            self.window.latencies.append(seconds)
            if problem:
                self.window.unintended.append(problem)

    def take(self) -> Window:
        with self.lock:
            window, self.window = self.window, Window()
        return window


def _client(
    server: RunningServer, stop: threading.Event, rate: float, rec: Recorder, seed: int
) -> None:
    """One keep-alive connection sending the mix at `rate` requests a second (0: flat out)."""
    rng = random.Random(seed)
    parts = urlsplit(server.metadata_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    names = [m for m in MIX for _ in range(m[1])]
    next_at = time.monotonic()
    while not stop.is_set():
        name, _, target, header, expected = rng.choice(names)
        started = time.perf_counter()
        try:
            conn.request("GET", target(rng), headers={"Metadata": "true"} if header else {})
            answer = conn.getresponse()
            answer.read()
            problem = None if answer.status == expected else f"{name}: {answer.status}"
        except (OSError, http.client.HTTPException) as exc:
            problem = f"{name}: {exc!r}"
            conn.close()
        rec.note(time.perf_counter() - started, problem)
        if rate > 0:
            next_at += 1 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))
    conn.close()


def _approver(server: RunningServer, stop: threading.Event, rec: Recorder) -> None:
    """Every two seconds: schedule an event over the admin API and approve it as the VM."""
    while not stop.wait(2.0):
        started = time.perf_counter()
        made = server.admin(
            "POST", "/events", json={"type": "Reboot", "notBefore": "+10m", "completeAfter": 0}
        )
        problem = None if made.status_code == 201 else f"schedule: {made.status_code}"
        if problem is None:
            event_id = made.json()["events"][0]["eventId"]
            body = {"StartRequests": [{"EventId": event_id}]}
            approved = httpx.post(
                server.metadata_url + EVENTS, json=body, headers={"Metadata": "true"}
            )
            problem = None if approved.status_code == 200 else f"approve: {approved.status_code}"
        rec.note(time.perf_counter() - started, problem)


def _run_clients(
    server: RunningServer,
    threads: int,
    rate: float,
    seconds: float,
    on_window: Callable[[Window], None],
    window: float,
) -> None:
    stop, rec = threading.Event(), Recorder()
    workers = [
        threading.Thread(target=_client, args=(server, stop, rate / threads, rec, n), daemon=True)
        for n in range(threads)
    ]
    workers.append(threading.Thread(target=_approver, args=(server, stop, rec), daemon=True))
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            time.sleep(min(window, max(0.0, deadline - time.monotonic())))
            on_window(rec.take())
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=15)


def measure_max(server: RunningServer, threads: int, seconds: float) -> float:
    counted: list[int] = []
    _run_clients(server, threads, 0, seconds, lambda w: counted.append(len(w.latencies)), seconds)
    return sum(counted) / seconds


def soak(
    server: RunningServer, threads: int, rate: float, seconds: float, window: float, warm_up: float
) -> dict[str, object]:
    pid, started = server.process.pid, time.monotonic()
    rows: list[dict[str, object]] = []
    unintended: list[str] = []

    def on_window(w: Window) -> None:
        usage = Usage.of(pid)
        lat = w.latencies or [0.0]
        unintended.extend(w.unintended)
        rows.append(
            {
                "t": round(time.monotonic() - started),
                "requests": len(w.latencies),
                "p50_ms": round(percentile(lat, 0.5) * 1e3, 2),
                "p99_ms": round(percentile(lat, 0.99) * 1e3, 2),
                "unintended": len(w.unintended),
                "rss": usage.rss,
                "fds": usage.fds,
            }
        )

    _run_clients(server, threads, rate, seconds, on_window, window)
    return _verdict(rows, unintended, warm_up)


def _verdict(
    rows: list[dict[str, object]], unintended: list[str], warm_up: float
) -> dict[str, object]:
    after = [r for r in rows if float(str(r["t"])) > warm_up] or rows[-1:]
    rss_start, rss_end = int(str(after[0]["rss"])), int(str(rows[-1]["rss"]))
    fds = [int(str(r["fds"])) for r in after]
    growth = (rss_end - rss_start) / rss_start
    p99s = [float(str(r["p99_ms"])) for r in after]
    return {
        "ok": not unintended and growth < RSS_GROWTH and max(fds) <= fds[0],
        "requests": sum(int(str(r["requests"])) for r in rows),
        "unintended_answers": len(unintended),
        "unintended_examples": unintended[:10],
        "rss_after_warm_up": rss_start,
        "rss_end": rss_end,
        "rss_growth_pct": round(growth * 100, 2),
        "fds_after_warm_up": fds[0],
        "fds_max": max(fds),
        "p99_ms_min": min(p99s),
        "p99_ms_max": max(p99s),
        "windows": rows,
    }


def run(
    minutes: float, rate: float | None, threads: int, window: float, probe: float
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="openimds-soak-") as tmp:
        config = Path(tmp) / "soak.yaml"
        config.write_text("identity:\n  rate_limit: 0\n")  # tokens at the soak's rate, not 20/s
        server = start_server(Path(tmp), config=str(config), args=["--no-access-log"])
        try:
            measured = measure_max(server, threads, probe)
            target = rate or 0.8 * measured
            seconds = minutes * 60
            summary = soak(
                server, threads, target, seconds, window, warm_up=min(60.0, seconds * 0.2)
            )
            alive = server.process.poll() is None
        finally:
            server.stop()
        problems = log_problems(server.output)
    summary["ok"] = bool(summary["ok"]) and alive and not problems
    return {
        "measured_max_rps": round(measured),
        "target_rps": round(target),
        "minutes": minutes,
        "server_crashed": not alive,
        "log_problems": problems[:10],
        **summary,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="requests/s (default: 80%% of the measured maximum)",
    )
    parser.add_argument("--threads", type=int, default=8, help="keep-alive client connections")
    parser.add_argument("--window", type=float, default=10.0, help="seconds per reported window")
    parser.add_argument("--probe", type=float, default=5.0, help="seconds to measure the maximum")
    args = parser.parse_args(argv)
    summary = run(args.minutes, args.rate, args.threads, args.window, args.probe)
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""`scripts/bench --fleet N`: openimds serving N VMs (docs/performance.md, "A fleet").

Measures, on loopback only:
- start-up: from the process start to its first answer, with N VMs in a JSON VM file, on
  a fresh state store; the median of STARTS starts;
- memory: resident set of the N-VM server minus a one-VM server's, per VM, once the
  work a server does after its first answer (the warm-ups) is done;
- throughput: the text-leaf GET spread over up to 1,000 VMs, each connection from its own
  source address in 127.0.0.0/8, against the same GET from one VM, with the same load
  generator (pipelining asyncio connections pinned to the load core). Other work on the
  machine moves req/s by tens of percent from one run to the next, so the two cases take
  turns for several rounds (the order swapped each round) and the median of the rounds'
  ratios is the figure; each run starts with a second of warm-up over all its VMs. The
  server's CPU time per answer is reported too: the number a busy machine disturbs least;
- with --postgres: two nodes on one throwaway PostgreSQL cluster, the time from a change
  made on one node to the other node serving it, over many changes (p50/p99).

Run through scripts/bench (which installs what is missing); this module needs the venv.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
LEAF = "/metadata/instance/compute/name?api-version=2025-04-07&format=text"
SERVER_CORE, LOAD_CORE = "0", "1"
SPREAD = 1000  # VMs the throughput run spreads over, one source address each
STARTS = 3  # start-ups timed; the median is reported
SETTLE = 2.0  # seconds after the first answer before memory is read: the warm-ups are done


def address(index: int) -> str:
    """VM `index`'s source address: 127.10.0.1 upwards (loopback, no setup needed)."""
    return f"127.10.{index // 250}.{index % 250 + 1}"


def write_fleet(path: Path, count: int) -> None:
    vms = [
        {
            "name": f"vm-{i:05d}",
            "addresses": [address(i)],
            "instance": {
                "compute": {
                    "name": f"vm-{i:05d}",
                    "location": "westeurope",
                    "vmSize": "Standard_B2s",
                    "vmId": f"00000000-0000-4000-8000-{i:012d}",
                    "subscriptionId": "8d10da13-8125-4ba9-a717-bf7490507b3d",
                    "resourceGroupName": "fleet",
                    "osType": "Linux",
                },
                "network": {
                    "interface": [
                        {
                            "macAddress": f"000D3A{i:06X}",
                            "ipv4": {
                                "ipAddress": [{"privateIpAddress": f"10.1.{i // 250}.{i % 250}"}]
                            },
                        }
                    ]
                },
            },
            "identities": {"systemAssigned": True},
        }
        for i in range(count)
    ]
    path.write_text(json.dumps({"vms": vms}))


class Server:
    def __init__(self, tmp: Path, tag: str, config: Path, state: str) -> None:
        self.log = tmp / f"{tag}.log"
        self.started = time.monotonic()
        cmd = [
            "taskset", "-c", SERVER_CORE, str(ROOT / ".venv/bin/openimds"), "serve",
            "--config", str(config), "--state", state, "--listen", "127.0.0.1:0",
            "--admin-listen", f"unix:{tmp / (tag + '.sock')}", "--rate-limit", "0",
            "--no-access-log",
        ]  # fmt: skip
        env = {**os.environ, "OPENIMDS_ADMIN_TOKEN": "fleet-bench-token-0123456789"}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.base = self._wait()
        self.sock = tmp / (tag + ".sock")

    def _wait(self) -> str:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if "metadata on http://" in text:
                return "http://" + text.split("metadata on http://", 1)[1].split(";", 1)[0]
            if self.proc.poll() is not None:
                raise RuntimeError(f"openimds did not start:\n{text}")
            time.sleep(0.01)
        raise RuntimeError("openimds did not start within 10 minutes")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def first_answer(server: Server, source: str) -> float:
    """Seconds from the process start until `source` is answered 200."""
    host, port = server.base.removeprefix("http://").rsplit(":", 1)
    while True:
        try:
            status = asyncio.run(_one_get(host, int(port), source))
        except OSError:
            status = 0
        if status == 200:
            return time.monotonic() - server.started
        time.sleep(0.005)


async def _one_get(host: str, port: int, source: str) -> int:
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    writer.write(f"GET {LEAF} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n\r\n".encode())
    line = await reader.readline()
    writer.close()
    return int(line.split()[1])


def load(server: Server, sources: list[str], seconds: float, depth: int = 8) -> dict[str, float]:
    """Run the pipelining load generator on the load core; its JSON summary, with the
    server's CPU time per answer (warm-up included on both sides of the division)."""
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'scripts')!r}); import fleetbench as f; "
    code += f"f.load_here({server.base!r}, {sources!r}, {seconds!r}, {depth!r})"
    cpu_before = server.cpu_seconds()
    out = subprocess.run(
        ["taskset", "-c", LOAD_CORE, sys.executable, "-c", code],
        capture_output=True, text=True, check=True, timeout=seconds + 120,
    ).stdout  # fmt: skip
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    cpu = server.cpu_seconds() - cpu_before
    result["server_cpu_us"] = round(cpu * 1e6 / max(result.pop("all_answers"), 1), 2)
    return result


def throughput(
    one: Server, many: Server, count: int, seconds: float, rounds: int
) -> dict[str, Any]:
    """The text leaf from 1,000 connections: all from VM 0 of the one-VM server, against
    one per VM of the fleet server, taking turns for `rounds` rounds."""
    spread = [address(i) for i in range(min(count, SPREAD))]
    single = [address(0)] * len(spread)
    runs: dict[str, list[dict[str, float]]] = {"single_vm": [], "spread": []}
    for n in range(rounds):
        pair = [("single_vm", one, single), ("spread", many, spread)]
        for name, server, sources in pair if n % 2 == 0 else reversed(pair):
            runs[name].append(load(server, sources, seconds))
    ratios = [b["rps"] / a["rps"] for a, b in zip(runs["single_vm"], runs["spread"], strict=True)]
    summary: dict[str, Any] = {"rounds": rounds}
    for name, results in runs.items():
        summary[name] = {
            "rps_median": round(statistics.median(r["rps"] for r in results)),
            "rps_runs": [round(r["rps"]) for r in results],
            "server_cpu_us_median": statistics.median(r["server_cpu_us"] for r in results),
            "non200": sum(r["non200"] for r in results),
            "connections": len(spread),
        }
    summary["spread_vs_single"] = round(statistics.median(ratios), 3)
    summary["spread_vs_single_runs"] = [round(r, 3) for r in ratios]
    cpu_one = summary["single_vm"]["server_cpu_us_median"]
    summary["cpu_single_vs_spread"] = round(cpu_one / summary["spread"]["server_cpu_us_median"], 3)
    return summary


def load_here(base: str, sources: list[str], seconds: float, depth: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_load(base, sources, seconds, depth))))


class _Client(asyncio.Protocol):
    request = f"GET {LEAF} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n\r\n".encode()

    def __init__(self, depth: int, counts: dict[str, int]) -> None:
        self.depth = depth
        self.counts = counts
        self.carry = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request * self.depth)

    def data_received(self, data: bytes) -> None:
        chunk = self.carry + data
        answered = chunk.count(b"HTTP/1.1 ")
        self.counts["answers"] += answered
        self.counts["ok"] += chunk.count(b"HTTP/1.1 200 ")
        self.carry = chunk[-12:]
        # Keep `depth` requests in flight: one new request per answer seen.
        if answered and self.transport is not None and not self.counts.get("stop"):
            self.transport.write(self.request * answered)


async def _load(base: str, sources: list[str], seconds: float, depth: int) -> dict[str, float]:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    loop = asyncio.get_running_loop()
    counts = {"answers": 0, "ok": 0}
    transports = []
    for source in sources:
        transport, _ = await loop.create_connection(
            lambda: _Client(depth, counts), host, int(port), local_addr=(source, 0)
        )
        transports.append(transport)
    await asyncio.sleep(1.0)  # warm-up over every VM: caches filled, clocks up
    start_answers, started = counts["answers"], time.monotonic()
    start_ok = counts["ok"]
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    answers, ok = counts["answers"] - start_answers, counts["ok"] - start_ok
    counts["stop"] = 1
    for transport in transports:
        transport.close()
    return {"rps": answers / elapsed, "non200": answers - ok, "all_answers": counts["answers"]}


def propagation(tmp: Path, config: Path, changes: int) -> dict[str, float]:
    """Two nodes on one throwaway PostgreSQL cluster: a VM changed through node A, timed
    until node B serves the change."""
    sys.path.insert(0, str(ROOT))
    from tests.support.postgres import throwaway_cluster

    with throwaway_cluster() as cluster:
        url = cluster.url()
        a = Server(tmp, "node-a", config, url)
        b = Server(tmp, "node-b", config, url)
        try:
            delays = [_one_change(a, b, n) for n in range(changes)]
        finally:
            a.stop()
            b.stop()
    delays.sort()
    return {
        "changes": changes,
        "p50_ms": statistics.median(delays) * 1000,
        "p99_ms": delays[int(len(delays) * 0.99) - 1] * 1000,
        "max_ms": delays[-1] * 1000,
    }


def _one_change(a: Server, b: Server, n: int) -> float:
    name = f"vm-{n % 10:05d}"
    body = {
        "addresses": [address(n % 10)],
        "instance": {"compute": {"name": f"{name}-v{n}"}},
    }
    _admin(a, "PUT", f"/vms/{name}", body)
    changed = time.monotonic()
    host, port = b.base.removeprefix("http://").rsplit(":", 1)
    while True:
        text = asyncio.run(_leaf(host, int(port), address(n % 10)))
        if text == f"{name}-v{n}":
            return time.monotonic() - changed
        if time.monotonic() - changed > 10:
            raise RuntimeError(f"node B did not serve change {n} within 10 s")


async def _leaf(host: str, port: int, source: str) -> str:
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    writer.write(f"GET {LEAF} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    body = await reader.readexactly(length)
    writer.close()
    return body.decode()


def _admin(server: Server, method: str, path: str, body: Any) -> None:
    import http.client
    import socket

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(str(server.sock))

    conn = UnixConnection("openimds")
    headers = {"Authorization": "Bearer fleet-bench-token-0123456789"}
    conn.request(method, path, json.dumps(body), {**headers, "Content-Type": "application/json"})
    answer = conn.getresponse()
    answer.read()
    if answer.status >= 400:
        raise RuntimeError(f"{method} {path}: {answer.status}")


def startups(tmp: Path, fleet: Path, count: int) -> tuple[list[float], Server]:
    """Seconds to the first answer of the fleet's last VM, for STARTS starts on a fresh
    state store each; the last server is left running."""
    times: list[float] = []
    for n in range(STARTS):
        server = Server(tmp, f"many-{n}", fleet, str(tmp / f"state-{n}.db"))
        try:
            times.append(round(first_answer(server, address(count - 1)), 3))
        except BaseException:
            server.stop()
            raise
        if n < STARTS - 1:
            server.stop()
    return times, server


def run(count: int, seconds: float, postgres_changes: int, rounds: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="openimds-fleetbench-") as tmpdir:
        tmp = Path(tmpdir)
        fleet, single = tmp / "fleet.json", tmp / "one.json"
        write_fleet(fleet, count)
        write_fleet(single, 1)
        one = Server(tmp, "one", single, "memory:")
        try:
            times, many = startups(tmp, fleet, count)
        except BaseException:
            one.stop()
            raise
        try:
            time.sleep(SETTLE)
            rss_one, rss_many = one.rss_bytes(), many.rss_bytes()
            served = throughput(one, many, count, seconds, rounds)
        finally:
            one.stop()
            many.stop()
        result: dict[str, Any] = {
            "vms": count,
            "fleet_file_bytes": fleet.stat().st_size,
            "startup_to_first_answer_s": statistics.median(times),
            "startup_runs_s": times,
            "rss_bytes_per_vm": round((rss_many - rss_one) / count),
            **served,
            "load_average": os.getloadavg(),
        }
        if postgres_changes:
            result["propagation"] = propagation(tmp, single, postgres_changes)
        return result

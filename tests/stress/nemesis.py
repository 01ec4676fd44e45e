"""A nemesis run (docs/reliability.md): three real nodes on one PostgreSQL, a workload over
real HTTP through random nodes while faults strike, then a checker over the history.

Workload: VMs created (If-None-Match: *), updated (If-Match: *), moved to another address
and removed; events scheduled for a VM and approved by that VM from its own source
address (127.0.x.y loopback) through a random node; signing keys rotated.
Faults, one at a time, each healed before the next: SIGKILL a node and restart it;
SIGSTOP a node for a few seconds; restart PostgreSQL; cut node C off from PostgreSQL (a
TCP proxy between them drops everything) while it keeps serving; slow that link.
Checker: every acknowledged write is in the store and on every node after healing; a
refused write left nothing; addresses and vmIds are one VM's each, in the store and on
every node at every sample; after each heal every node serves a fresh write within the
bound (p50/p99/max reported); no DocumentIncarnation goes backwards per VM per node; no
event's state goes backwards per node; no approval is counted twice; a caller is only
ever served a VM that was written with its address.

`scripts/nemesis --minutes N` prints the figures as JSON and exits 1 on any violation (a
change that reached every node later than BOUND is listed under `late`, not a violation:
it is a figure, reported with the convergence percentiles).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import select
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from tests.support.postgres import Cluster, throwaway_cluster
from tests.support.server import RunningServer, start_server

ADDRESSES = [f"127.0.30.{i}" for i in range(1, 41)]
BOUND = 2.0  # seconds: every live node serves a change within this after a heal
EVENTS = "/metadata/scheduledevents?api-version=2020-07-01"
NAME = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"
TIMEOUT = 5.0
STATES = {"Scheduled": 1, "Started": 2}


class Link:
    """A TCP proxy between a node and PostgreSQL: open, cut (bytes vanish both ways;
    new connections go nowhere) or slow (each chunk waits). Healing a cut closes what
    was open through it, so both ends learn the connection is gone."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "open"
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def set(self, mode: str) -> None:
        was, self.mode = self.mode, mode
        if was == "cut" and mode == "open":
            with self.lock:
                for sock in list(self.sockets):
                    with contextlib.suppress(OSError):
                        sock.close()
                self.sockets.clear()

    def close(self) -> None:
        self.server.close()
        self.set("cut")
        self.set("open")  # closes what is open through it

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self.lock:
            self.sockets.add(client)
        while self.mode == "cut":  # a black hole: the client waits, nothing answers
            time.sleep(0.05)
            if client not in self.sockets:
                return
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        with self.lock:
            self.sockets.add(upstream)
        pair = {client: upstream, upstream: client}
        try:
            while True:
                ready, _, _ = select.select(list(pair), [], [], 0.5)
                for sock in ready:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    if self.mode == "cut":
                        continue
                    if self.mode == "slow":
                        time.sleep(0.05)
                    pair[sock].sendall(chunk)
        except (OSError, ValueError):
            return
        finally:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.close()


@dataclass
class History:
    operations: dict[str, int] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)  # changes that reached a node after BOUND
    convergence: list[float] = field(default_factory=list)  # seconds, after each heal
    propagation: list[float] = field(default_factory=list)  # seconds, between faults
    # VM name -> its last acknowledged record (None: removed); `uncertain`: names a write
    # of unknown outcome touched (a timeout, a 503), checked against `tried` instead.
    acked: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    uncertain: set[str] = field(default_factory=set)
    tried: dict[str, list[dict[str, Any] | None]] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)  # names whose only writes were refused
    # (address, VM name) pairs any write tried: who a caller may be served as.
    assigned: set[tuple[str, str]] = field(default_factory=set)
    events: dict[str, str] = field(default_factory=dict)  # event id -> its VM
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str) -> None:
        with self.lock:
            self.operations[what] = self.operations.get(what, 0) + 1

    def violation(self, text: str) -> None:
        with self.lock:
            if len(self.violations) < 200:
                self.violations.append(text)


class Fleet:
    """The nodes, PostgreSQL and the link node C reaches it through."""

    def __init__(self, cluster: Cluster, url: str, tmp: Path) -> None:
        self.cluster = cluster
        self.url = url
        self.tmp = tmp
        parts = urlsplit(url)
        self.link = Link((parts.hostname or "127.0.0.1", parts.port or 5432))
        self.urls = [url, url, _with_port(url, self.link.port)]
        self.nodes: list[RunningServer] = [self._start(i) for i in range(3)]
        self.down: set[int] = set()  # nodes not serving now (killed, stopped)

    def _start(self, index: int) -> RunningServer:
        return start_server(self.tmp, state_path=self.urls[index], timeout=60)

    def restart(self, index: int) -> None:
        self.nodes[index] = self._start(index)

    def live(self) -> list[int]:
        return [i for i in range(3) if i not in self.down]

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(OSError):
                node.process.send_signal(signal.SIGCONT)
            node.stop()
        self.link.close()


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username + '@' if parts.username else ''}127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _vm(name: str, address: str, location: str) -> dict[str, Any]:
    return {
        "addresses": [address],
        "instance": {"compute": {"name": name, "location": location}},
    }


class Workload:
    def __init__(self, fleet: Fleet, history: History, seed: int) -> None:
        self.fleet = fleet
        self.history = history
        self.random = random.Random(seed)
        self.serial = 0
        self.stop = threading.Event()

    def node(self) -> RunningServer:
        return self.fleet.nodes[self.random.choice(self.fleet.live() or [0])]

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        try:
            return self.node().admin(method, path, timeout=TIMEOUT, **kwargs)
        except httpx.HTTPError:
            return None

    def run(self) -> None:
        ops = [self.create] * 4 + [self.update] * 2 + [self.move] * 2 + [self.remove]
        ops += [self.schedule, self.approve, self.approve, self.rotate]
        while not self.stop.is_set():
            self.random.choice(ops)()
            time.sleep(0.02)

    def _write(self, name: str, what: str, record: dict[str, Any] | None, **headers: str) -> None:
        history = self.history
        with history.lock:
            history.tried.setdefault(name, []).append(record)
            if record is not None:
                history.assigned.add((record["addresses"][0], name))
        if record is None:
            answer = self.admin("DELETE", f"/vms/{name}")
        else:
            answer = self.admin("PUT", f"/vms/{name}", json=record, headers=headers)
        status = None if answer is None else answer.status_code
        history.count(f"{what} {status if status in (200, 201, 404, 409, 412) else 'unknown'}")
        with history.lock:
            if status in (200, 201):
                history.acked[name] = record
                history.refused.discard(name)
            elif status == 404 and record is None:
                history.acked.setdefault(name, None)
            elif status in (409, 412, 404):
                if name not in history.acked and name not in history.uncertain:
                    history.refused.add(name)
            else:
                history.uncertain.add(name)
                history.refused.discard(name)

    def _existing(self) -> tuple[str, dict[str, Any]] | None:
        with self.history.lock:
            present = [(n, r) for n, r in self.history.acked.items() if r is not None]
        return self.random.choice(present) if present else None

    def create(self) -> None:
        self.serial += 1
        name = f"v{self.serial}"
        record = _vm(name, self.random.choice(ADDRESSES), "westeurope")
        self._write(name, "create", record, **{"If-None-Match": "*"})

    def update(self) -> None:
        found = self._existing()
        if found:
            name, record = found
            changed = {
                **record,
                "instance": {"compute": {"name": name, "location": f"l{self.serial}"}},
            }
            self.serial += 1
            self._write(name, "update", changed, **{"If-Match": "*"})

    def move(self) -> None:
        found = self._existing()
        if found:
            name, record = found
            self._write(name, "move", {**record, "addresses": [self.random.choice(ADDRESSES)]})

    def remove(self) -> None:
        found = self._existing()
        if found:
            self._write(found[0], "remove", None)

    def schedule(self) -> None:
        found = self._existing()
        if not found:
            return
        body = {"type": "Reboot", "notBefore": "+10m", "target": f"vm:{found[0]}"}
        answer = self.admin("POST", "/events", json=body)
        status = None if answer is None else answer.status_code
        self.history.count(f"schedule {status or 'unknown'}")
        if status == 201 and answer is not None:
            with self.history.lock:
                self.history.events[answer.json()["events"][0]["eventId"]] = found[0]

    def approve(self) -> None:
        with self.history.lock:
            events = list(self.history.events.items())
        if not events:
            return
        event_id, vm = self.random.choice(events)
        with self.history.lock:
            record = self.history.acked.get(vm)
        if record is None:
            return
        node = self.node()
        body = {"StartRequests": [{"EventId": event_id}]}
        try:
            with _from(record["addresses"][0]) as client:
                answer = client.post(node.metadata_url + EVENTS, json=body)
            self.history.count(f"approve {answer.status_code}")
        except httpx.HTTPError:
            self.history.count("approve unknown")

    def rotate(self) -> None:
        if self.random.random() < 0.2:
            answer = self.admin("POST", "/identity/keys/rotate")
            self.history.count(f"rotate {answer.status_code if answer else 'unknown'}")


def _from(address: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(transport=transport, headers={"Metadata": "true"}, timeout=TIMEOUT)


class Sampler:
    """Looks at every live node twice a second; notes what breaks a rule."""

    def __init__(self, fleet: Fleet, history: History) -> None:
        self.fleet = fleet
        self.history = history
        self.stop = threading.Event()
        self.incarnations: dict[tuple[int, str], int] = {}
        self.states: dict[tuple[int, str], int] = {}
        self.samples = 0

    def run(self) -> None:
        while not self.stop.wait(0.5):
            for index in self.fleet.live():
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    self.sample(index, self.fleet.nodes[index])

    def sample(self, index: int, node: RunningServer) -> None:
        vms = node.admin("GET", "/vms", timeout=TIMEOUT).json()["vms"]
        self.samples += 1
        owners: dict[str, str] = {}
        for vm in vms:
            for address in vm.get("addresses", ()):
                other = owners.setdefault(address, vm["name"])
                if other != vm["name"]:
                    self.history.violation(
                        f"node {index}: {address} held by {other} and {vm['name']}"
                    )
        for event in node.admin("GET", "/events", timeout=TIMEOUT).json()["events"]:
            key = (index, event["eventId"])
            state = STATES.get(event["status"], 0)
            if state < self.states.get(key, 0):
                self.history.violation(
                    f"node {index}: event {key[1]} went back to {event['status']}"
                )
            self.states[key] = max(state, self.states.get(key, 0))
            approvals = [a["vm"] for a in event.get("approvals", ())]
            if len(approvals) != len(set(approvals)):
                self.history.violation(f"node {index}: event {key[1]} counted {approvals}")
        for vm in random.sample(vms, min(3, len(vms))):
            self.caller(index, node, vm)

    def caller(self, index: int, node: RunningServer, vm: dict[str, Any]) -> None:
        address = vm["addresses"][0]
        with _from(address) as client:
            served = client.get(node.metadata_url + NAME)
            if served.status_code == 200:
                with self.history.lock:
                    ok = (address, served.text) in self.history.assigned
                if not ok:
                    self.history.violation(f"node {index}: {address} served as {served.text}")
            events = client.get(node.metadata_url + EVENTS)
            if events.status_code == 200 and served.status_code == 200:
                key = (index, served.text)
                incarnation = int(events.json()["DocumentIncarnation"])
                if incarnation < self.incarnations.get(key, 0):
                    self.history.violation(
                        f"node {index}: {served.text}'s DocumentIncarnation went back "
                        f"to {incarnation}"
                    )
                self.incarnations[key] = max(incarnation, self.incarnations.get(key, 0))


class Nemesis:
    FAULTS = ("kill", "pause", "postgres", "cut", "slow")

    def __init__(self, fleet: Fleet, history: History, seed: int) -> None:
        self.fleet = fleet
        self.history = history
        self.random = random.Random(seed + 1)
        self.marks = 0

    def strike(self, fault: str) -> None:
        fleet = self.fleet
        victim = self.random.randrange(3)
        self.history.faults.append(fault)
        if fault == "kill":
            fleet.down.add(victim)
            fleet.nodes[victim].process.send_signal(signal.SIGKILL)
            fleet.nodes[victim].process.wait()
            time.sleep(1)
            fleet.restart(victim)
            fleet.down.discard(victim)
        elif fault == "pause":
            fleet.down.add(victim)
            fleet.nodes[victim].process.send_signal(signal.SIGSTOP)
            time.sleep(self.random.uniform(2, 5))
            fleet.nodes[victim].process.send_signal(signal.SIGCONT)
            fleet.down.discard(victim)
        elif fault == "postgres":
            fleet.cluster.stop()
            time.sleep(self.random.uniform(1, 3))
            fleet.cluster.start()
        elif fault in ("cut", "slow"):
            fleet.link.set(fault)
            time.sleep(self.random.uniform(3, 6))
            fleet.link.set("open")
        self.history.convergence.append(self.mark(BOUND * 15, after=fault))

    def mark(self, limit: float, after: str = "nothing") -> float:
        """A fresh write through a node, then seconds until every node serves it."""
        self.marks += 1
        name = f"mark{self.marks}"
        record = _vm(name, f"127.0.31.{self.marks % 250 + 1}", "mark")
        started = time.monotonic()
        while time.monotonic() - started < limit:
            node = self.fleet.nodes[self.random.randrange(3)]
            with contextlib.suppress(httpx.HTTPError):
                answer = node.admin("PUT", f"/vms/{name}", json=record, timeout=TIMEOUT)
                if answer.status_code in (200, 201):
                    break
            time.sleep(0.05)
        with self.history.lock:
            self.history.acked[name] = record
            self.history.tried.setdefault(name, []).append(record)
            self.history.assigned.add((record["addresses"][0], name))
        acked = time.monotonic()
        while time.monotonic() - acked < limit:
            if all(self._serves(node, name) for node in self.fleet.nodes):
                took = time.monotonic() - acked
                if took > BOUND:
                    self.history.late.append(
                        f"{name} (after {after}) took {took:.2f} s to reach every node"
                    )
                return took
            time.sleep(0.01)
        behind = [i for i, node in enumerate(self.fleet.nodes) if not self._serves(node, name)]
        readiness = {i: self._readiness(self.fleet.nodes[i]) for i in behind}
        self.history.violation(
            f"{name} (after {after}) did not reach every node in {limit} s: nodes {behind} "
            f"not serving it, their /readyz {readiness}; last log lines "
            + " | ".join(
                line[:200] for i in behind for line in self.fleet.nodes[i].output.splitlines()[-5:]
            )
        )
        return limit

    def _readiness(self, node: RunningServer) -> object:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            return node.admin("GET", "/readyz", timeout=TIMEOUT).json()
        return "no answer"

    def _serves(self, node: RunningServer, name: str) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return node.admin("GET", f"/vms/{name}", timeout=TIMEOUT).status_code == 200
        return False


def check(fleet: Fleet, history: History) -> None:
    """After the last heal: the store and every node against the history."""
    with psycopg.connect(fleet.url, autocommit=True) as conn:
        stored = {
            key: json.loads(value)
            for key, value in conn.execute(
                "SELECT key, value FROM records WHERE kind = 'vm'"
            ).fetchall()
        }
        claimed = conn.execute("SELECT value, owner FROM claims WHERE space = 'vm-address'")
        holders: dict[str, str] = {str(value): str(owner) for value, owner in claimed}
    _check_store_rules(stored, holders, history)
    _check_history(stored, history)
    _check_nodes(fleet, stored, history)


def _check_store_rules(stored: dict[str, Any], holders: dict[str, str], history: History) -> None:
    owners: dict[str, str] = {}
    for name, record in stored.items():
        for address in record.get("addresses", ()):
            other = owners.setdefault(address, name)
            if other != name:
                history.violation(f"store: {address} held by {other} and {name}")
            if holders.get(address) != name:
                history.violation(f"store: {address} of {name} claimed by {holders.get(address)}")


def _check_history(stored: dict[str, Any], history: History) -> None:
    for name, record in history.acked.items():
        if name in history.uncertain:
            continue
        have = stored.get(name)
        if (have is None) != (record is None) or (
            record is not None and have is not None and have.get("addresses") != record["addresses"]
        ):
            history.violation(f"store: acknowledged {name} is {have}, expected {record}")
    for name in history.uncertain:
        have = stored.get(name)
        if have is not None and not any(
            t is not None and t["addresses"] == have.get("addresses") for t in history.tried[name]
        ):
            history.violation(f"store: {name} holds {have}, never written so")
    for name in history.refused:
        if name in stored:
            history.violation(f"store: refused {name} is there")


def _check_nodes(fleet: Fleet, stored: dict[str, Any], history: History) -> None:
    expected = {name: tuple(record.get("addresses", ())) for name, record in stored.items()}
    for index, node in enumerate(fleet.nodes):
        served = {
            vm["name"]: tuple(vm.get("addresses", ()))
            for vm in node.admin("GET", "/vms").json()["vms"]
        }
        if served != expected:
            differ = sorted(set(served.items()) ^ set(expected.items()), key=str)[:5]
            history.violation(f"node {index} serves other VMs than the store: {differ}")


def run(minutes: float, seed: int) -> dict[str, Any]:
    history = History()
    with throwaway_cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE nemesis")
        fleet = Fleet(cluster, cluster.url("nemesis"), Path(tmp))
        try:
            return _run(fleet, history, minutes, seed)
        finally:
            fleet.stop()


def _run(fleet: Fleet, history: History, minutes: float, seed: int) -> dict[str, Any]:
    workload = Workload(fleet, history, seed)
    sampler = Sampler(fleet, history)
    nemesis = Nemesis(fleet, history, seed)
    threads = [threading.Thread(target=t.run, daemon=True) for t in (workload, sampler)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    end = started + minutes * 60
    faults = list(Nemesis.FAULTS)
    turn = 0
    while time.monotonic() < end - 10:
        time.sleep(2)
        history.propagation.append(nemesis.mark(BOUND * 15))  # quiet: nothing broken
        nemesis.strike(faults[turn % len(faults)])
        turn += 1
    workload.stop.set()
    sampler.stop.set()
    for thread in threads:
        thread.join(timeout=30)
    history.convergence.append(nemesis.mark(BOUND * 15))
    time.sleep(BOUND)
    check(fleet, history)
    return report(history, time.monotonic() - started, sampler.samples)


def _figures(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def report(history: History, seconds: float, samples: int) -> dict[str, Any]:
    return {
        "seconds": round(seconds),
        "operations": sum(history.operations.values()),
        "by_outcome": dict(sorted(history.operations.items())),
        "faults": {f: history.faults.count(f) for f in Nemesis.FAULTS},
        "samples": samples,
        "convergence_after_heal": _figures(history.convergence),
        "propagation_between_faults": _figures(history.propagation),
        "late": history.late[:20],
        "violations": len(history.violations),
        "violation_list": history.violations[:20],
    }


def throughput(writes: int, threads: int) -> dict[str, Any]:
    """Inventory writes per second with the rules enforced: `writes` PUTs (each a new VM
    with its own address) through two nodes on one PostgreSQL, from `threads` clients."""
    with throwaway_cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE throughput")
        url = cluster.url("throughput")
        nodes = [start_server(Path(tmp), state_path=url) for _ in range(2)]
        try:
            statuses: list[int] = []

            def client(offset: int) -> None:
                with httpx.Client(timeout=TIMEOUT) as http:
                    for i in range(offset, writes, threads):
                        node = nodes[i % 2]
                        answer = http.put(
                            f"{node.admin_url}/vms/t{i}",
                            json=_vm(f"t{i}", f"127.1.{i // 250}.{i % 250 + 1}", "x"),
                            headers={"Authorization": f"Bearer {node.admin_token}"},
                        )
                        statuses.append(answer.status_code)

            started = time.monotonic()
            workers = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            took = time.monotonic() - started
        finally:
            for node in nodes:
                node.stop()
    return {
        "writes": writes,
        "threads": threads,
        "seconds": round(took, 2),
        "per_second": round(writes / took),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/nemesis", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument(
        "--throughput", type=int, metavar="WRITES", help="measure inventory writes instead"
    )
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    if args.throughput:
        print(json.dumps(throughput(args.throughput, args.threads), indent=2))
        return 0
    result = run(args.minutes, args.seed)
    print(json.dumps(result, indent=2))
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())

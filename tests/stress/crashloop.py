"""SIGKILL a real server at random moments of a loop of writes, and check what survived:
`scripts/crashloop [--kills N]`.

Each round starts the server on the same SQLite state, checks the store and every write
acknowledged so far, then runs writes from a thread (VM PUTs through the inventory API,
events scheduled and approved by the VM, signing-key rotations) and kills the server
with SIGKILL after a random 0.05-1.5 s. A write counts as acknowledged once its 2xx
answer was read; one in flight at the kill may land or not, but never in part. After
each kill: `PRAGMA integrity_check` is ok; after each restart: every acknowledged VM has
its last acknowledged body (or the one in flight), whole; every acknowledged event is
there, approved if its approval was acknowledged; every acknowledged key is kept and the
newest one is active; no record appears twice. Prints JSON; exit status 1 on a failure.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.server import RunningServer, start_server

CONFIG = """
vms:
  - name: a
    addresses: [127.0.0.1]
    instance: {compute: {name: a, location: westeurope}}
"""
EVENTS = "/metadata/scheduledevents?api-version=2020-07-01"
NAMES = [f"v{n}" for n in range(5)]
# A started event is removed DurationInSeconds + completeAfter after it starts; a day keeps
# every event of a run listed, so a missing one is a lost write, not a finished event.
EVENT = {"type": "Freeze", "target": "vm:a", "notBefore": "+1h", "completeAfter": 86400}


@dataclass
class Ledger:
    """What the server acknowledged, and what was in flight when it died."""

    vms: dict[str, int] = field(default_factory=dict)  # name -> last acknowledged sequence
    vm_in_flight: dict[str, int] = field(default_factory=dict)
    events: set[str] = field(default_factory=set)
    approved: set[str] = field(default_factory=set)
    keys: list[str] = field(default_factory=list)
    key_in_flight: bool = False
    writes: int = 0
    seq: int = 0


def _vm_body(name: str, seq: int) -> dict[str, object]:
    # Two fields from one sequence number: a half-applied record would show them apart.
    host = NAMES.index(name) + 2
    compute = {"name": name, "location": f"loc{seq}", "tags": f"seq:{seq}"}
    return {"addresses": [f"127.0.1.{host}"], "instance": {"compute": compute}}


def _write_loop(
    server: RunningServer, ledger: Ledger, rng: random.Random, stop: threading.Event
) -> None:
    while not stop.is_set():
        try:
            _one_write(server, ledger, rng)
        except httpx.HTTPError:
            return  # the server is gone: what was in flight stays "in flight"


def _one_write(server: RunningServer, ledger: Ledger, rng: random.Random) -> None:
    pick = rng.random()
    if pick < 0.5:
        name = rng.choice(NAMES)
        ledger.seq += 1
        ledger.vm_in_flight[name] = ledger.seq
        answer = server.admin("PUT", f"/vms/{name}", json=_vm_body(name, ledger.seq))
        if answer.status_code in (200, 201):
            ledger.vms[name] = ledger.vm_in_flight.pop(name)
            ledger.writes += 1
    elif pick < 0.9:
        made = server.admin("POST", "/events", json=EVENT)
        if made.status_code != 201:
            return
        event_id = made.json()["events"][0]["eventId"]
        ledger.events.add(event_id)
        ledger.writes += 1
        body = {"StartRequests": [{"EventId": event_id}]}
        approved = httpx.post(server.metadata_url + EVENTS, json=body, headers={"Metadata": "true"})
        if approved.status_code == 200:
            ledger.approved.add(event_id)
            ledger.writes += 1
    else:
        ledger.key_in_flight = True
        answer = server.admin("POST", "/identity/keys/rotate")
        if answer.status_code == 200:
            ledger.keys.append(answer.json()["kid"])
            ledger.key_in_flight = False
            ledger.writes += 1


def integrity(state: str) -> str:
    with sqlite3.connect(state) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def check(server: RunningServer, ledger: Ledger) -> list[str]:
    """What the restarted server lost, duplicated or half-applied (empty: nothing)."""
    problems = _check_vms(server, ledger)
    events = server.admin("GET", "/events").json()["events"]
    ids = [e["eventId"] for e in events]
    if len(ids) != len(set(ids)):
        problems.append("an event appears twice")
    by_id = {e["eventId"]: e for e in events}
    for event_id in ledger.events - by_id.keys():
        problems.append(f"acknowledged event {event_id} lost")
    for event_id in ledger.approved & by_id.keys():
        event = by_id[event_id]
        if "a" in event["awaiting"] or event["state"] != "Started":
            problems.append(f"acknowledged approval of {event_id} lost: {event['state']}")
    keys = server.admin("GET", "/identity/keys").json()["keys"]
    kids = [k["kid"] for k in keys]
    if len(kids) != len(set(kids)):
        problems.append("a signing key appears twice")
    problems += [f"acknowledged key {kid} lost" for kid in ledger.keys if kid not in kids]
    active = [k["kid"] for k in keys if k.get("active")]
    if ledger.keys and not ledger.key_in_flight and active != [ledger.keys[-1]]:
        problems.append(f"active key {active}, expected {ledger.keys[-1]}")
    return problems


def _check_vms(server: RunningServer, ledger: Ledger) -> list[str]:
    problems: list[str] = []
    listed = server.admin("GET", "/vms").json()["vms"]
    names = [vm["name"] for vm in listed]
    if len(names) != len(set(names)):
        problems.append("a VM appears twice")
    for vm in listed:
        if vm["name"] not in NAMES:
            continue
        compute = vm["instance"]["compute"]
        seq = int(compute["location"].removeprefix("loc"))
        if compute["tags"] != f"seq:{seq}":
            problems.append(f"VM {vm['name']} half-applied: {compute}")
        allowed = {ledger.vms.get(vm["name"]), ledger.vm_in_flight.get(vm["name"])}
        if seq not in allowed:
            problems.append(f"VM {vm['name']} at loc{seq}, acknowledged {allowed}")
        ledger.vms[vm["name"]] = seq  # a write in flight that landed is now the baseline
    problems += [f"acknowledged VM {n} lost" for n in ledger.vms if n not in names]
    return problems


def run(kills: int, seed: int, max_delay: float) -> dict[str, object]:
    rng = random.Random(seed)
    ledger = Ledger()
    problems: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="openimds-crash-") as tmp:
        root = Path(tmp)
        config, state = root / "fleet.yaml", str(root / "state.db")
        config.write_text(CONFIG)
        done = 0
        for round_ in range(kills + 1):
            server = start_server(root, config=str(config), state_path=state)
            problems += [f"after kill {round_}: {p}" for p in check(server, ledger)]
            ledger.vm_in_flight.clear()
            if round_ == kills or problems:
                server.stop()
                break
            stop = threading.Event()
            writer = threading.Thread(target=_write_loop, args=(server, ledger, rng, stop))
            writer.start()
            time.sleep(rng.uniform(0.05, max_delay))
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            stop.set()
            writer.join(timeout=30)
            done += 1
            verdict = integrity(state)
            if verdict != "ok":
                problems.append(f"after kill {done}: integrity_check {verdict}")
            server.log_path.unlink(missing_ok=True)
    return {
        "ok": not problems,
        "kills": done,
        "acknowledged_writes": ledger.writes,
        "vm_puts_sent": ledger.seq,
        "events": len(ledger.events),
        "approvals": len(ledger.approved),
        "key_rotations": len(ledger.keys),
        "lost_or_broken": len(problems),
        "problems": problems[:20],
        "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/crashloop", description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--max-delay", type=float, default=1.5, help="longest run before a kill (s)"
    )
    args = parser.parse_args(argv)
    summary = run(args.kills, args.seed, args.max_delay)
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

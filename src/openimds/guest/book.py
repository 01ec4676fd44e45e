"""Each VM's provisioning state (docs/guests.md, "The provisioning state"): its goal
state's incarnation, what its agents last reported, when it last fetched its goal state.

Kept in memory and in the state store (record kind `guest`, one record per VM name),
followed on every node. What writes, and when:
- a health report or a status upload writes its VM's record, and only when what it says
  changed (an agent repeating "Ready" every few seconds writes nothing);
- a new incarnation (the VM's goal state changed) is written by a job once a second, so
  the goal-state GET that notices it never touches the database;
- the last goal-state fetch stays in memory on the node that answered it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from openimds.core.guest.documents import GuestIds
from openimds.core.guest.reports import AgentStatus, HealthReport
from openimds.core.vm import VmSnapshot
from openimds.store import Put, Store, StoreError, decoding

log = logging.getLogger("openimds")

KIND = "guest"
GOAL_STATE_ROUTE = "wire.goalstate"


@dataclass
class GuestState:
    incarnation: int = 0
    digest: str = ""
    health: dict[str, Any] | None = None  # state, substatus, description, details, at
    agent: dict[str, Any] | None = None  # agent_version, status, message, handlers, at
    ready_since: float | None = None
    # In memory only: the node's own observations.
    fetched_at: float | None = None
    reported_at: float | None = None
    uploaded_at: float | None = None
    reports: int = 0
    uploads: int = 0

    def record(self) -> str:
        return json.dumps(
            {
                "incarnation": self.incarnation,
                "digest": self.digest,
                "health": self.health,
                "agent": self.agent,
                "ready_since": self.ready_since,
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def of_record(cls, name: str, text: str) -> GuestState:
        with decoding(KIND, name):
            data = json.loads(text)
            return cls(
                incarnation=int(data.get("incarnation", 0)),
                digest=str(data.get("digest", "")),
                health=data.get("health"),
                agent=data.get("agent"),
                ready_since=data.get("ready_since"),
            )


def goal_digest(vm: VmSnapshot, certificate_keys: Iterable[str]) -> str:
    """What the VM's goal state is made of: its ids and its certificates' keys. A change
    of anything else (tags, a scheduled event) leaves the incarnation as it is."""
    ids = GuestIds.of(vm)
    parts = [ids.vm_id, ids.name, ids.private_ip, *sorted(certificate_keys)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


@dataclass
class GuestBook:
    store: Store
    clock: Callable[[], float]
    certificate_keys: Callable[[VmSnapshot], list[str]]
    states: dict[str, GuestState] = field(default_factory=dict)
    # VM name -> (revision, incarnation) served for that revision.
    _served: dict[str, tuple[int, int]] = field(default_factory=dict)
    _dirty: set[str] = field(default_factory=set)
    # Told when another node's change makes a VM's cached answers stale.
    stale: list[Callable[[str], None]] = field(default_factory=list)

    def load(self) -> None:
        self.states = {
            name: GuestState.of_record(name, text) for name, text in self.store.list_records(KIND)
        }

    def state(self, name: str) -> GuestState:
        found = self.states.get(name)
        if found is None:
            found = self.states[name] = GuestState()
        return found

    # -- the goal state ---------------------------------------------------------------------
    def incarnation(self, vm: VmSnapshot) -> int:
        """The incarnation of the VM's goal state: the stored one while the goal state is
        the same, one more when it changed (written by `flush`, not here)."""
        served = self._served.get(vm.name)
        if served is not None and served[0] == vm.revision:
            return served[1]
        state = self.state(vm.name)
        digest = goal_digest(vm, self.certificate_keys(vm))
        if digest != state.digest:
            state.digest = digest
            state.incarnation += 1
            self._dirty.add(vm.name)
        self._served[vm.name] = (vm.revision, state.incarnation)
        return state.incarnation

    def flush(self) -> None:
        """Write the incarnations changed since the last tick, in one batch."""
        if not self._dirty:
            return
        names = sorted(self._dirty)
        self.store.write_batch([Put(KIND, name, self.states[name].record()) for name in names])
        self._dirty.difference_update(names)

    def close(self) -> None:
        """At shutdown: the last incarnations, unless the store is gone (the next start
        counts them again from the VMs: forward, never back)."""
        try:
            self.flush()
        except StoreError as exc:
            log.warning("the guest plane's last incarnations were not written: %s", exc)

    def answered(self, route: str, status: int, vm_name: str) -> None:
        """Every answer of the WireServer (no store access: memory only); a goal state
        counts as fetched only when it was served (a 405 to a DELETE is no fetch)."""
        if route == GOAL_STATE_ROUTE and status == 200 and vm_name != "-":
            self.state(vm_name).fetched_at = self.clock()

    # -- reports ------------------------------------------------------------------------------
    def record_health(self, vm: VmSnapshot, report: HealthReport) -> None:
        now = self.clock()
        state = self.state(vm.name)
        state.reported_at = now
        state.reports += 1
        said = report.as_data()
        previous = state.health
        if previous is not None and {k: previous.get(k) for k in said} == said:
            return
        was_ready = previous is not None and previous.get("state") == "Ready"
        # Ready since the first of an unbroken run of Ready reports.
        ready = said["state"] == "Ready"
        ready_since = (state.ready_since if was_ready else now) if ready else None
        self._write(vm.name, replace(state, health={**said, "at": now}, ready_since=ready_since))

    def record_status(self, vm: VmSnapshot, status: AgentStatus) -> None:
        now = self.clock()
        state = self.state(vm.name)
        state.uploaded_at = now
        state.uploads += 1
        said = status.as_data()
        previous = state.agent
        if previous is not None and {k: previous.get(k) for k in said} == said:
            return
        self._write(vm.name, replace(state, agent={**said, "at": now}))

    def _write(self, name: str, new: GuestState) -> None:
        """Store first: a report the store refused is not acknowledged nor remembered."""
        self.store.write_batch([Put(KIND, name, new.record())])
        self.states[name] = new
        self._dirty.discard(name)

    # -- other nodes ----------------------------------------------------------------------------
    def follow(self, key: str) -> None:
        if key == "*":
            names = set(self.states) | {name for name, _ in self.store.list_records(KIND)}
        else:
            names = {key}
        for name in names:
            text = self.store.get_record(KIND, name)
            if text is None:
                continue
            theirs = GuestState.of_record(name, text)
            mine = self.state(name)
            if theirs.incarnation > mine.incarnation or (
                theirs.incarnation == mine.incarnation and theirs.digest != mine.digest
            ):
                mine.incarnation, mine.digest = theirs.incarnation, theirs.digest
                self._served.pop(name, None)
                for drop in self.stale:
                    drop(name)
            mine.health, mine.agent, mine.ready_since = (
                theirs.health,
                theirs.agent,
                theirs.ready_since,
            )

    # -- reading --------------------------------------------------------------------------------
    def view(self, name: str) -> dict[str, Any]:
        """A VM's provisioning state as the admin API gives it."""
        state = self.states.get(name) or GuestState()
        return {
            "vm": name,
            "incarnation": state.incarnation or None,
            "health": _stamped(state.health),
            "agent": _stamped(state.agent),
            "ready_since": iso(state.ready_since),
            "goal_state_fetched_at": iso(state.fetched_at),
            "last_report_at": iso(state.reported_at),
            "last_status_at": iso(state.uploaded_at),
            "summary": summary(state),
        }


def iso(at: float | None) -> str | None:
    """An epoch second as ISO 8601 UTC, to the second (None stays None)."""
    return None if at is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _stamped(said: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if said is None else {**said, "at": iso(said.get("at"))}


def summary(state: GuestState) -> str:
    """One line for people: "agent Ready since 12:03:04; provisioning succeeded"."""

    def clock(at: float) -> str:
        return time.strftime("%H:%M:%S", time.gmtime(at))

    parts: list[str] = []
    agent = state.agent
    if agent is not None:
        parts.append(f"agent {agent.get('status') or '?'} {agent.get('agent_version', '')}".strip())
    health = state.health
    if health is None:
        parts.append("no health report yet")
    elif health.get("state") == "Ready":
        since = state.ready_since or health.get("at")
        parts.append(f"Ready since {clock(since)} UTC" if since else "Ready")
        parts.append("provisioning succeeded")
    else:
        details = health.get("details") or {}
        why = details.get("reason") or health.get("description") or health.get("substatus")
        parts.append("NotReady" + (f": {why}" if why else ""))
    if state.fetched_at is None and state.incarnation == 0:
        parts.append("goal state never fetched")
    return "; ".join(parts)

"""The live scheduled events of a server: held in memory, advanced by the clock, persisted.

The store is the source of truth; memory is a copy that requests read without touching
the store. Every change (a time-driven step, an approval, an operator's command) is
computed from the copy and written with one atomic, conditional `write_batch`: it
applies only if the book's version in the store is still the one the copy was loaded
at. When another node wrote first, the batch is refused (Conflict), the copy is reloaded
and the change computed again from the new state, so:

- an approval whose 200 went out is in the store (it survives a SIGKILL), and two
  approvals posted at one moment to two nodes both count;
- a time-driven step (Scheduled -> Started at NotBefore, removal after the duration)
  is written once: the node that loses the race finds it already done;
- DocumentIncarnation never goes back: the version only grows, and a node reloads only
  a newer book (announced by the store's change feed when nodes share a store).

Everything here runs on the event loop (the metadata listener, the admin app, the tick
and the change feed share it), so there is no lock.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from openimds.config.model import EventsSettings
from openimds.config.vm_model import VmSpec
from openimds.core.scheduled_events import (
    Event,
    EventBook,
    Result,
    Trigger,
    UnknownEvent,
    advance,
    approve,
    command,
    next_due,
    post,
)
from openimds.core.scheduled_events_api import Approve, UnknownEventId
from openimds.core.vm import VmSnapshot
from openimds.events import records
from openimds.events.metrics import EventMetrics
from openimds.events.schedule import (
    ScheduleError,
    ScheduleRequest,
    build_event,
    new_event_id,
    scenario_requests,
)
from openimds.store import Conflict, Delete, Expect, Put, Store, StoreError

# Conditional writes tried before giving up; each retry follows a reload, so only a
# store that changes faster than a reload could exhaust them.
TRIES = 8
Change = Callable[[EventBook], Result]


class LiveEvents:
    def __init__(
        self,
        store: Store,
        settings: EventsSettings,
        specs: Callable[[], Mapping[str, VmSpec]],
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_event_id,
    ) -> None:
        self.store = store
        self.settings = settings
        self.specs = specs
        self.clock = clock
        self.new_id = new_id
        self.metrics = EventMetrics()
        self.version: str | None = None
        self.book = EventBook()
        self.due = next_due(self.book)
        self.reload()
        self.started_at = clock()

    # -- the metadata side --------------------------------------------------------------
    def book_at(self, now: float) -> EventBook:
        """The port the endpoint reads: the state advanced to `now`. Most calls come
        before anything is due and cost one comparison."""
        if now >= self.due:
            try:
                self._update(lambda book: advance(book, now))
            except StoreError:
                # Steps the clock makes (Scheduled -> Started) follow from `now` alone: shown
                # while the store refuses writes (it logs the outage once), written by the
                # first tick after it recovers.
                return advance(self.book, now).book
        return self.book

    def tick(self) -> None:
        self.book_at(self.clock())

    def on_approve(self, vm: VmSnapshot, effect: Approve) -> None:
        """Persist an approval handed back by the endpoint, before its 200 is written.
        After a reload an event may be gone (another node removed it): the POST then
        gets the unknown-EventId answer, as it would have a moment later."""
        try:
            self._update(lambda book: approve(book, effect.vm, effect.event_ids, effect.at))
        except UnknownEvent as exc:
            raise UnknownEventId(exc.event_id) from None

    def approve_for(self, vm: str, event_id: str) -> Event | None:
        """An operator's approval on `vm`'s behalf: counted exactly as the VM's own POST
        of a StartRequest would be (UnknownEvent if the VM does not see this event)."""
        now = self.clock()
        self._update(lambda book: approve(book, vm, [event_id], now))
        return self.book.events.get(event_id)

    def follow(self, key: str) -> None:
        """The store's change feed says the book changed (on another node)."""
        self.reload()

    # -- the operator side ---------------------------------------------------------------
    def schedule(
        self, requests: Sequence[ScheduleRequest], anchor: float | None = None
    ) -> list[Event]:
        """Add events, all or none, in one write. Relative `at` counts from `anchor`."""
        return self._schedule(requests, anchor, ())

    def _schedule(
        self,
        requests: Sequence[ScheduleRequest],
        anchor: float | None,
        extra: Sequence[Put | Delete],
    ) -> list[Event]:
        now = self.clock()
        base = now if anchor is None else anchor
        specs = self.specs()
        events = [
            build_event(r, specs=specs, settings=self.settings, anchor=base, new_id=self.new_id)
            for r in requests
        ]
        if len({e.id for e in events}) != len(events):
            raise ScheduleError("two events of the request have the same eventId")

        def post_all(book: EventBook) -> Result:
            result = advance(book, now)
            steps = list(result.steps)
            for event in events:
                result = post(result.book, event, now)
                steps.extend(result.steps)
            return Result(result.book, tuple(steps))

        self._update(post_all, extra)
        return events

    def run(self, event_id: str, trigger: Trigger) -> Event | None:
        """An operator's start / complete / cancel. The event after it, None if removed."""
        now = self.clock()
        self._update(lambda book: command(book, event_id, trigger, now))
        return self.book.events.get(event_id)

    def load_scenario(self, data: Any, anchor: float | None = None) -> list[Event]:
        return self.schedule(scenario_requests(data), anchor)

    def load_scenario_file(self, path: str) -> list[Event]:
        """The configured scenario, once per state store: a restart does not replay it.
        Its relative times count from this server's start."""
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise ScheduleError(f"events.scenario {path}: cannot read: {exc.strerror}") from exc
        digest = hashlib.sha256(raw).hexdigest()
        if self.store.get_record(records.SCENARIO, digest) is not None:
            return []
        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            at = getattr(exc, "problem_mark", None)
            where = f"{path}:{at.line + 1}:{at.column + 1}" if at else path
            problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line
            raise ScheduleError(f"events.scenario {where}: not YAML or JSON: {problem}") from None
        mark = Put(records.SCENARIO, digest, str(self.started_at))
        try:
            return self._schedule(scenario_requests(data), self.started_at, (mark,))
        except ScheduleError as exc:  # name the file: the operator may have several
            raise ScheduleError(f"events.scenario {path}: {exc}") from None
        except Conflict:
            return []  # another node starting at the same moment loaded it

    # -- persistence --------------------------------------------------------------------------
    def reload(self) -> None:
        """Take the store's book if it is newer than the copy (never an older one)."""
        version = self.store.get_record(records.BOOK, records.VERSION)
        if version == self.version and self.version is not None:
            return
        if _number(version) < _number(self.version):
            return
        self.book = records.load(self.store)
        self.version = version
        self.due = next_due(self.book)

    def _update(self, change: Change, extra: Sequence[Put | Delete] = ()) -> None:
        """Write `change` of the current book, then keep it; on a Conflict reload and
        compute it again. A failed write leaves memory as it was."""
        for _ in range(TRIES):
            result = change(self.book)
            ops = [*records.changes(self.book, result.book), *extra]
            if not ops:
                self._keep(result)
                return
            following = str(_number(self.version) + 1)
            ops.append(Put(records.BOOK, records.VERSION, following))
            expect = [Expect(records.BOOK, records.VERSION, self.version)]
            expect.extend(Expect(op.kind, op.key, None) for op in extra if isinstance(op, Put))
            try:
                self.store.write_batch(ops, expect)
            except Conflict as exc:
                if exc.expect.kind != records.BOOK:
                    raise  # an `extra` record exists already (a scenario another node loaded)
                self.reload()
                continue
            self.version = following
            self._keep(result)
            return
        raise StoreError("scheduled events: the state store kept changing; try again")

    def _keep(self, result: Result) -> None:
        self.book = result.book
        self.due = next_due(self.book)
        if result.steps:
            self.metrics.record(result.steps)


def _number(version: str | None) -> int:
    return 0 if version is None else int(version)

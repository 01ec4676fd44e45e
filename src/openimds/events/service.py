"""The live scheduled events of a server: held in memory, advanced by the clock, persisted.

The state is loaded from the store once, at start. After that it is advanced on the
1-second tick and on every scheduledevents request, using `now`, without reading the
store. Every change is written with one atomic `write_batch` before it is kept in memory,
so an approval whose 200 went out survives a SIGKILL, and incarnations never go back.

Everything here runs on the event loop (the metadata listener, the admin app and the
tick share it), so there is no lock.
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
from openimds.core.inventory import VmSnapshot
from openimds.core.scheduled_events import (
    Event,
    EventBook,
    Result,
    Trigger,
    advance,
    approve,
    command,
    next_due,
    post,
)
from openimds.core.scheduled_events_api import Approve
from openimds.events import records
from openimds.events.metrics import EventMetrics
from openimds.events.schedule import (
    ScheduleError,
    ScheduleRequest,
    build_event,
    new_event_id,
    scenario_requests,
)
from openimds.store import Delete, Put, Store, StoreError


class EventsService:
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
        self.book = records.load(store)
        self.due = next_due(self.book)
        self.started_at = clock()

    # -- the metadata side --------------------------------------------------------------
    def book_at(self, now: float) -> EventBook:
        """The port the endpoint reads: the state advanced to `now`. Most calls come
        before anything is due and cost one comparison."""
        if now >= self.due:
            result = advance(self.book, now)
            try:
                self._apply(result)
            except StoreError:
                # Steps the clock makes (Scheduled -> Started) follow from `now` alone: shown
                # while the store refuses writes, written by the first tick after it recovers.
                return result.book
        return self.book

    def tick(self) -> None:
        self.book_at(self.clock())

    def on_approve(self, vm: VmSnapshot, effect: Approve) -> None:
        """Persist an approval handed back by the endpoint, before its 200 is written."""
        self._apply(approve(self.book, effect.vm, effect.event_ids, effect.at))

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
        result = advance(self.book, now)
        steps = list(result.steps)
        for event in events:
            result = post(result.book, event, now)
            steps.extend(result.steps)
        self._apply(Result(result.book, tuple(steps)), extra)
        return events

    def run(self, event_id: str, trigger: Trigger) -> Event | None:
        """An operator's start / complete / cancel. The event after it, None if removed."""
        result = command(self.book, event_id, trigger, self.clock())
        self._apply(result)
        return result.book.events.get(event_id)

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

    # -- persistence --------------------------------------------------------------------------
    def _apply(self, result: Result, extra: Sequence[Put | Delete] = ()) -> None:
        """Write the change, then keep it: a failed write leaves memory as it was."""
        ops = [*records.changes(self.book, result.book), *extra]
        if ops:
            self.store.write_batch(ops)
        self.book = result.book
        self.due = next_due(self.book)
        if result.steps:
            self.metrics.record(result.steps)

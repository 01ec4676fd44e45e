"""LiveEvents: memory first, every change written in one batch, nothing read per
request, state back after a restart, scenario files named in their errors. Virtual clock,
in-memory and SQLite stores."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from openimds.config.model import EventsSettings
from openimds.config.vm_model import VmSpec
from openimds.events import records
from openimds.events.live import LiveEvents
from openimds.events.metrics import EventsCollector
from openimds.events.schedule import ScheduleError, validate_request
from openimds.store import Delete, Expect, Op, Put, Store, StoreError, open_store
from openimds.store.memory import MemoryStore
from tests.support.clock import FakeClock

T0 = 1_764_000_000.0
SPECS = {
    name: VmSpec.model_validate(
        {"name": name, "instance": {"compute": {"name": name, "vmScaleSetName": "pool"}}}
    )
    for name in ("vm-a", "vm-b")
}


class CountingStore(MemoryStore):
    """Counts what LiveEvents asks of the store."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.batches: list[Sequence[Op]] = []
        self.fail = False

    def list_records(self, kind: str) -> list[tuple[str, str]]:
        self.reads += 1
        return super().list_records(kind)

    def get_record(self, kind: str, key: str) -> str | None:
        self.reads += 1
        return super().get_record(kind, key)

    def write_batch(self, ops: Sequence[Op], expect: Sequence[Expect] = ()) -> None:
        if self.fail:
            raise StoreError("disk full")
        self.batches.append(list(ops))
        super().write_batch(ops, expect)


def live_events(store: Store, clock: FakeClock, **settings: object) -> LiveEvents:
    ids = iter(f"id-{n}" for n in range(100))
    return LiveEvents(
        store,
        EventsSettings.model_validate(settings),
        lambda: SPECS,
        clock=clock,
        new_id=lambda: next(ids),
    )


def schedule(svc: LiveEvents, **fields: object) -> str:
    data = {"type": "Reboot", "target": "vm:vm-a", "notBefore": "+10m", **fields}
    return svc.schedule([validate_request(data)])[0].id


def test_requests_never_read_the_store_and_write_only_on_change() -> None:
    store, clock = CountingStore(), FakeClock(T0)
    svc = live_events(store, clock)
    reads_after_load = store.reads
    event_id = schedule(svc)
    assert len(store.batches) == 1
    for second in range(1, 60):
        svc.book_at(T0 + second)
        svc.tick()
    assert store.reads == reads_after_load
    assert len(store.batches) == 1, "nothing changed, nothing written"
    svc.approve("vm-a", (event_id,), T0 + 60)
    (batch,) = store.batches[1:]
    kinds = sorted((op.kind, op.key) for op in batch if isinstance(op, (Put, Delete)))
    assert kinds == [
        (records.EVENT, event_id),
        (records.BOOK, records.VERSION),  # the compare-and-set version rises with it
        (records.INCARNATION, "vm-a"),
    ]


def test_reading_the_book_never_writes_even_when_a_step_is_due() -> None:
    store, clock = CountingStore(), FakeClock(T0)
    svc = live_events(store, clock)
    event_id = schedule(svc, notBefore="+10s")
    assert svc.book_at(T0 + 11).events[event_id].state == "Started"  # shown as of now
    assert len(store.batches) == 1 and svc.book.events[event_id].state == "Scheduled"
    svc.advance(T0 + 11)  # the write
    assert len(store.batches) == 2 and svc.book.events[event_id].state == "Started"


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    clock = FakeClock(T0)
    first = live_events(open_store(path), clock, approval="all")
    event_id = schedule(first, target="scaleSet:pool", approval="all")
    first.schedule([validate_request({"type": "Freeze", "target": "vm:vm-b"})])
    first.approve("vm-a", (event_id,), T0 + 5)
    before = first.book
    first.store.close()  # as after a SIGKILL: only what was written is there
    again = live_events(open_store(path), clock)
    assert again.book == before
    assert [(a.vm, a.at) for a in again.book.events[event_id].approvals] == [("vm-a", T0 + 5)]
    assert again.book.events[event_id].state == "Scheduled"
    assert again.book.incarnation("vm-a") == 1 and again.book.incarnation("vm-b") == 2
    again.store.close()


def test_incarnations_outlive_their_events() -> None:
    store, clock = CountingStore(), FakeClock(T0)
    svc = live_events(store, clock)
    event_id = schedule(svc, durationInSeconds=0)
    started = svc.run(event_id, "start")
    assert started is not None and started.state == "Started"
    assert svc.run(event_id, "complete") is None
    assert svc.book.events == {} and svc.book.incarnation("vm-a") == 3
    reloaded = live_events(store, clock)
    assert reloaded.book.incarnation("vm-a") == 3
    assert store.list_records(records.EVENT) == []


def test_a_failed_write_keeps_the_old_state() -> None:
    store, clock = CountingStore(), FakeClock(T0)
    svc = live_events(store, clock)
    event_id = schedule(svc)
    before = svc.book
    store.fail = True
    with pytest.raises(StoreError):
        svc.approve("vm-a", (event_id,), T0 + 1)
    assert svc.book == before


def test_steps_the_clock_makes_are_shown_while_the_store_refuses_writes() -> None:
    store, clock = CountingStore(), FakeClock(T0)
    svc = live_events(store, clock)
    event_id = schedule(svc, notBefore="+10s")
    store.fail = True
    clock.now = T0 + 11
    svc.tick()  # no exception: the tick job must not fail every second of an outage
    assert svc.book_at(clock.now).events[event_id].state == "Started"
    assert svc.book.events[event_id].state == "Scheduled"  # kept: not written yet
    store.fail = False
    svc.tick()
    assert svc.book.events[event_id].state == "Started"
    assert live_events(store, clock).book.events[event_id].state == "Started"


def test_a_batch_with_a_bad_event_schedules_nothing() -> None:
    store, clock = CountingStore(), FakeClock(T0)
    svc = live_events(store, clock)
    good = validate_request({"type": "Reboot", "target": "vm:vm-a"})
    bad = validate_request({"type": "Reboot", "target": "vm:ghost"})
    with pytest.raises(ScheduleError):
        svc.schedule([good, bad])
    dupes = [validate_request({"type": "Reboot", "eventId": "x", "target": "vm:vm-a"})] * 2
    with pytest.raises(ScheduleError, match="same eventId"):
        svc.schedule(dupes)
    assert svc.book.events == {} and store.batches == []


def test_the_configured_scenario_loads_once_per_store(tmp_path: Path) -> None:
    scenario = tmp_path / "drill.yaml"
    scenario.write_text(
        "events:\n"
        "  - {type: Preempt, target: 'vm:vm-a', at: +10s}\n"
        "  - {type: Freeze, target: 'vm:vm-b', at: +0s, notBefore: +1m}\n"
    )
    store, clock = CountingStore(), FakeClock(T0)
    svc = live_events(store, clock)
    loaded = svc.load_scenario_file(str(scenario))
    assert [e.posted_at for e in loaded] == [T0 + 10, T0]
    assert loaded[1].not_before == T0 + 60
    clock.advance(100)
    assert live_events(store, clock).load_scenario_file(str(scenario)) == []
    with pytest.raises(ScheduleError, match="cannot read"):
        svc.load_scenario_file(str(tmp_path / "missing.yaml"))
    (tmp_path / "bad.yaml").write_text("events: [\n")
    with pytest.raises(ScheduleError, match="not YAML"):
        svc.load_scenario_file(str(tmp_path / "bad.yaml"))


def test_metrics_by_type_state_and_approval_latency() -> None:
    store, clock = CountingStore(), FakeClock(T0)
    svc = live_events(store, clock)
    first = schedule(svc)
    schedule(svc, type="Preempt", target="vm:vm-b", at="+1h")
    svc.approve("vm-a", (first,), T0 + 7)
    registry = CollectorRegistry()
    registry.register(EventsCollector(svc.metrics, lambda: svc.book))
    text = generate_latest(registry).decode()
    assert 'openimds_scheduled_events{state="Started",type="Reboot"} 1.0' in text
    assert 'openimds_scheduled_events{state="Pending",type="Preempt"} 1.0' in text
    assert (
        'openimds_scheduled_event_transitions_total{trigger="approved",type="Reboot"} 1.0' in text
    )
    assert 'openimds_scheduled_event_approval_latency_seconds_bucket{le="5.0"} 0.0' in text
    assert 'openimds_scheduled_event_approval_latency_seconds_bucket{le="10.0"} 1.0' in text
    assert "openimds_scheduled_event_approval_latency_seconds_sum 7.0" in text


def test_scenario_errors_name_the_file(tmp_path: Path) -> None:
    one_vm = {"vm-a": SPECS["vm-a"]}  # no target needed
    live_events = LiveEvents(MemoryStore(), EventsSettings(), lambda: one_vm, clock=FakeClock(T0))
    cases = {
        "keys.yaml": ("bogus: 1\n", "unknown top-level key(s) bogus"),
        "far.yaml": ("- {type: Reboot, notBefore: 1.0e+300}\n", "outside 1970"),
        "broken.yaml": ("events: [\n", ":2:1: not YAML or JSON: expected"),
        "binary.yaml": ("\udcff", "not YAML or JSON"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        with pytest.raises(ScheduleError) as caught:
            live_events.load_scenario_file(str(path))
        message = str(caught.value)
        assert message.startswith(f"events.scenario {path}"), message
        assert expected in message
        assert "\n" not in message
    assert live_events.book.events == {}


# -- nodes sharing one store --------------------------------------------------------------


def _two_nodes() -> tuple[MemoryStore, FakeClock, LiveEvents, LiveEvents]:
    store, clock = MemoryStore(), FakeClock(T0)
    return store, clock, live_events(store, clock), live_events(store, clock)


def test_an_event_scheduled_on_one_node_is_seen_by_the_other_after_the_feed() -> None:
    _, _, a, b = _two_nodes()
    event_id = schedule(a)
    assert event_id not in b.book.events
    b.follow("version")
    assert b.book.events[event_id].state == "Scheduled"


def test_two_approvals_at_one_moment_on_two_nodes_both_count() -> None:
    store, _, a, b = _two_nodes()
    event_id = schedule(a, target="scaleSet:pool", notBefore="+10m")  # vm-a and vm-b
    b.follow("version")
    a.approve("vm-a", (event_id,), T0 + 5)
    # b has not heard of a's approval: its write conflicts, it reloads and approves again.
    b.approve("vm-b", (event_id,), T0 + 5)
    stored = records.load(store).events[event_id]
    assert {approval.vm for approval in stored.approvals} == {"vm-a", "vm-b"}
    assert stored.state == "Started"  # every affected VM approved
    assert b.book == records.load(store)


def test_a_time_driven_step_is_written_once() -> None:
    store, _, a, b = _two_nodes()
    event_id = schedule(a, notBefore="+10s")
    b.follow("version")
    incarnation = records.load(store).incarnation("vm-a")
    a.advance(T0 + 11)
    b.advance(T0 + 11)  # conflicts, reloads, finds the step done: nothing to write
    book = records.load(store)
    assert book.events[event_id].state == "Started"
    assert book.incarnation("vm-a") == incarnation + 1
    assert b.book == book


def test_a_node_never_takes_an_older_book() -> None:
    store, _, a, b = _two_nodes()
    schedule(a)
    b.follow("version")
    newer = b.book
    store.put_record(records.BOOK, records.VERSION, "0")  # a stale announcement
    b.follow("version")
    assert b.book is newer

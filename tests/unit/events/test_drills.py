"""The canceled-maintenance drill on a virtual clock: posted, shown as Scheduled, withdrawn
by the platform before NotBefore, never started; and the planned cancel it rests on."""

from __future__ import annotations

import pytest

from openimds.events import records
from openimds.events.drills import DRILLS, drill_request
from openimds.events.schedule import ScheduleError, validate_request
from openimds.store.memory import MemoryStore
from tests.support.clock import FakeClock
from tests.unit.events.test_live import T0, live_events


@pytest.mark.parametrize("dev", [False, True])
def test_canceled_maintenance_disappears_before_not_before(dev: bool) -> None:
    drill = DRILLS["canceled-maintenance"]
    cancel = drill.dev_cancel_after if dev else drill.cancel_after
    notice = drill.dev_notice if dev else drill.notice
    assert cancel is not None and 0 < cancel < notice
    store, clock = MemoryStore(), FakeClock(T0)
    svc = live_events(store, clock)
    (event,) = svc.schedule([validate_request(drill_request(drill.name, "vm-a", dev))])
    assert (event.cancel_at, event.not_before) == (T0 + cancel, T0 + notice)
    clock.advance(cancel - 1)
    svc.tick()
    assert svc.book.events[event.id].state == "Scheduled"
    assert svc.book.incarnation("vm-a") == 1
    clock.advance(1)
    svc.tick()
    assert svc.book.events == {}
    assert svc.book.incarnation("vm-a") == 2  # the document changed: the event is gone
    assert svc.metrics.transitions.get(("Freeze", "cancel")) == 1
    clock.advance(notice)
    svc.tick()
    assert svc.book.incarnation("vm-a") == 2
    assert records.load(store).events == {}


def test_a_start_before_the_cancel_wins() -> None:
    store, clock = MemoryStore(), FakeClock(T0)
    svc = live_events(store, clock)
    data = {"type": "Reboot", "target": "vm:vm-a", "notBefore": "+10m", "cancelAt": "+5m"}
    data |= {"completeAfter": "3600"}
    (event,) = svc.schedule([validate_request(data)])
    svc.run(event.id, "start")
    clock.advance(400)
    svc.tick()
    assert svc.book.events[event.id].state == "Started"


def test_a_cancel_late_catches_up_at_the_moment_it_was_due() -> None:
    store, clock = MemoryStore(), FakeClock(T0)
    svc = live_events(store, clock)
    data = {"type": "Reboot", "target": "vm:vm-a", "notBefore": "+10m", "cancelAt": "+5m"}
    svc.schedule([validate_request(data)])
    clock.advance(3600)  # long past NotBefore: the cancel came first, so it never started
    svc.tick()
    assert svc.book.events == {}
    assert ("Reboot", "deadline") not in svc.metrics.transitions


@pytest.mark.parametrize("cancel_at", ["+10m", "+11m", "+0s"])
def test_a_cancel_must_fall_between_posting_and_not_before(cancel_at: str) -> None:
    svc = live_events(MemoryStore(), FakeClock(T0))
    data = {"type": "Reboot", "target": "vm:vm-a", "notBefore": "+10m", "cancelAt": cancel_at}
    with pytest.raises(ScheduleError, match="cancelAt: must fall after"):
        svc.schedule([validate_request(data)])


def test_the_planned_cancel_survives_a_restart() -> None:
    store, clock = MemoryStore(), FakeClock(T0)
    data = {"type": "Reboot", "target": "vm:vm-a", "notBefore": "+10m", "cancelAt": "+5m"}
    (event,) = live_events(store, clock).schedule([validate_request(data)])
    assert records.load(store).events[event.id].cancel_at == T0 + 300
    legacy = records.encode(event).replace(',"cancel_at":1764000300.0', "")
    assert records.decode(legacy).cancel_at is None

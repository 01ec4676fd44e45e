"""Event times that could not be rendered are refused before they are stored, and a bad
scenario file is named in its error."""

from __future__ import annotations

from pathlib import Path

import pytest

from openimds.config.model import EventsSettings
from openimds.config.vm_model import VmSpec
from openimds.events.schedule import LATEST, ScheduleError, build_event, validate_request
from openimds.events.service import EventsService
from openimds.store.memory import MemoryStore

T0 = 1_764_000_000.0
SPECS = {"vm-a": VmSpec.model_validate({"name": "vm-a", "instance": {"compute": {"name": "a"}}})}


def build(settings: EventsSettings | None = None, **fields: object) -> float:
    request = validate_request({"type": "Freeze", **fields})
    event = build_event(
        request,
        specs=SPECS,
        settings=settings or EventsSettings(),
        anchor=T0,
        new_id=lambda: "id-1",
    )
    return event.not_before


@pytest.mark.parametrize(
    "fields",
    [
        {"notBefore": 1e300},
        {"notBefore": float("nan")},
        {"notBefore": "+99999999999d"},
        {"at": -1e12},
        {"at": "1969-12-31T23:59:59Z"},
        {"durationInSeconds": 10**20},
        {"completeAfter": 1e300},
        {"completeAfter": float("inf")},
        {"notBefore": "9999-12-31T23:59:59Z"},
    ],
)
def test_times_outside_the_renderable_range_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ScheduleError, match=r"outside 1970-01-01\.\.9999-01-01"):
        build(**fields)


def test_a_huge_configured_notice_is_refused_at_scheduling() -> None:
    settings = EventsSettings.model_validate({"notice": {"freeze": 1e300}})
    with pytest.raises(ScheduleError, match="notBefore"):
        build(settings)


def test_the_edges_of_the_range_still_schedule() -> None:
    assert build(notBefore="9998-12-31T00:00:00Z", completeAfter=0, durationInSeconds=0) < LATEST
    assert build(at="1970-01-01T00:00:00Z", notBefore="+0s") == 0.0


def test_scenario_errors_name_the_file(tmp_path: Path) -> None:
    service = EventsService(MemoryStore(), EventsSettings(), lambda: SPECS, clock=lambda: T0)
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
            service.load_scenario_file(str(path))
        message = str(caught.value)
        assert message.startswith(f"events.scenario {path}"), message
        assert expected in message
        assert "\n" not in message
    assert service.book.events == {}

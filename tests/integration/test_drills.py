"""Maintenance drills: each preset posts Azure's event with its wording and timing; real
timings run on the virtual clock, dev timings in seconds; the CLI lists and runs them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import openimds.testing
from openimds.events.drills import DRILLS
from tests.support.server import start_server

EVENTS = "/metadata/scheduledevents?api-version=2020-07-01"


@pytest.mark.parametrize("name", sorted(n for n, d in DRILLS.items() if d.cancel_after is None))
def test_each_drill_with_real_timings_on_the_virtual_clock(name: str) -> None:
    drill = DRILLS[name]
    with openimds.testing.serve() as imds:
        (event_id,) = imds.drill(name, dev=False)
        doc = httpx.get(imds.url + EVENTS, headers={"Metadata": "true"}).json()
        (event,) = doc["Events"]
        assert (event["EventId"], event["EventType"]) == (event_id, drill.type)
        assert event["Description"] == drill.description
        assert event["EventSource"] == drill.source
        assert event["DurationInSeconds"] == drill.duration
        assert event["EventStatus"] == "Scheduled"
        (live,) = imds.events()
        assert live["state"] == "Scheduled"
        imds.advance(drill.notice - 1)
        assert imds.events()[0]["state"] == "Scheduled"
        imds.advance(1)
        assert imds.events()[0]["state"] == "Started"


def test_canceled_maintenance_is_withdrawn_before_not_before() -> None:
    drill = DRILLS["canceled-maintenance"]
    assert drill.cancel_after is not None
    with openimds.testing.serve() as imds:
        imds.drill(drill.name, dev=False)
        (live,) = imds.events()
        assert live["state"] == "Scheduled" and live["cancelAt"]
        imds.advance(drill.cancel_after - 1)
        assert [e["state"] for e in imds.events()] == ["Scheduled"]
        imds.advance(1)
        assert imds.events() == []
        doc = httpx.get(imds.url + EVENTS, headers={"Metadata": "true"}).json()
        assert doc == {"DocumentIncarnation": 2, "Events": []}


def test_dev_timings_are_seconds() -> None:
    with openimds.testing.serve() as imds:
        imds.drill("spot-eviction", dev=True)
        imds.advance(DRILLS["spot-eviction"].dev_notice)
        assert imds.events()[0]["state"] == "Started"


def test_cli_lists_and_runs_drills(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        listed = server.cli("events", "drill")
        assert listed.returncode == 0, listed.stderr
        assert [line.split()[0] for line in listed.stdout.splitlines()] == list(DRILLS)
        assert "30s notice (5s with --dev)" in listed.stdout
        ran = server.cli("events", "drill", "scale-in", "--dev")
        assert ran.returncode == 0, ran.stderr
        assert "  Terminate  NotBefore " in ran.stdout
        unknown = server.cli("events", "drill", "meteor")
        assert unknown.returncode == 1
        assert "no drill is named 'meteor'; drills: live-migration" in unknown.stderr
    finally:
        server.stop()

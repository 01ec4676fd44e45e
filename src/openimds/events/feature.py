"""Scheduled events, plugged into a server (features.ALL)."""

from __future__ import annotations

from openimds.config import Config, ConfigError
from openimds.core.scheduled_events_api import ScheduledEventsEndpoint
from openimds.events import records
from openimds.events.admin import EventsAdmin
from openimds.events.live import LiveEvents
from openimds.events.metrics import EventsCollector
from openimds.events.schedule import ScheduleError
from openimds.runtime import Plug, Runtime
from openimds.store.follower import each_key
from openimds.store.memory import MemoryStore

PATH = "/metadata/scheduledevents"


def install(runtime: Runtime) -> Plug:
    """The endpoint (over the service, its LiveEvents), the 1-second advance, admin
    routes, metrics, and the configured scenario (a bad scenario stops the start with a
    ConfigError)."""
    settings = runtime.config.events
    inventory = runtime.inventory
    live_events = LiveEvents(
        runtime.store, settings, lambda: inventory.specs, clock=runtime.clock.now
    )
    _load_scenario(live_events)
    return Plug(
        endpoints=[(PATH, ScheduledEventsEndpoint(live_events))],
        admin=[EventsAdmin(live_events)],
        jobs=[live_events.tick],
        collectors=[EventsCollector(live_events.metrics, lambda: live_events.book)],
        # Every change raises the book's version: one notification per change.
        follows={records.BOOK: each_key(live_events.follow)},
    )


def check(config: Config) -> None:
    """The scenario, loaded as `install` loads it, into a throwaway store (only when one
    is configured: building the targets of a large fleet costs time at every start)."""
    if config.events.scenario is None:
        return
    specs = {spec.display_name: spec for spec in config.vms}
    _load_scenario(LiveEvents(MemoryStore(), config.events, lambda: specs))


def _load_scenario(live_events: LiveEvents) -> None:
    if live_events.settings.scenario is not None:
        try:
            live_events.load_scenario_file(live_events.settings.scenario)
        except ScheduleError as exc:
            raise ConfigError(str(exc)) from None

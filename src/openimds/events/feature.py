"""Scheduled events, plugged into a server (features.ALL)."""

from __future__ import annotations

from openimds.config import ConfigError
from openimds.core.scheduled_events_api import Approve, ScheduledEventsEndpoint
from openimds.events.admin import EventsAdmin
from openimds.events.metrics import EventsCollector
from openimds.events.schedule import ScheduleError
from openimds.events.service import EventsService
from openimds.runtime import Plug, Runtime

PATH = "/metadata/scheduledevents"


def install(runtime: Runtime) -> Plug:
    """The endpoint, its effects, the 1-second advance, admin routes, metrics, and the
    configured scenario (a bad scenario stops the start with a ConfigError)."""
    settings = runtime.config.events
    fleet = runtime.fleet
    service = EventsService(runtime.store, settings, lambda: fleet.specs)
    if settings.scenario is not None:
        try:
            service.load_scenario_file(settings.scenario)
        except ScheduleError as exc:
            raise ConfigError(str(exc)) from None
    return Plug(
        endpoints=[(PATH, ScheduledEventsEndpoint(service.book_at))],
        admin=[EventsAdmin(service)],
        effects={Approve: service.on_approve},
        jobs=[service.tick],
        collectors=[EventsCollector(service.metrics, lambda: service.book)],
    )

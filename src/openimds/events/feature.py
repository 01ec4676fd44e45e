"""Wiring scheduled events into a server (runtime.FEATURES)."""

from __future__ import annotations

from openimds.config import ConfigError
from openimds.core.scheduled_events_api import ScheduledEventsEndpoint
from openimds.events import admin
from openimds.events.metrics import EventsCollector
from openimds.events.schedule import ScheduleError
from openimds.events.service import EventsService
from openimds.runtime import Runtime

PATH = "/metadata/scheduledevents"


def install(runtime: Runtime) -> None:
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
    runtime.endpoints.append((PATH, ScheduledEventsEndpoint(service.book_at)))
    runtime.effect_handlers.append(service.on_effects)
    runtime.background.append(service.tick)
    runtime.admin_routes.extend(admin.routes(service))
    runtime.collectors.append(EventsCollector(service.metrics, lambda: service.book))

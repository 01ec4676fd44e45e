"""The console's routes on the admin listener, all under /console/.

They are public as far as the admin app's bearer check goes: a browser cannot send the
token, so the console checks its own session cookie (console/auth.py) and then calls the
admin API with the token in-process. Nothing here is reachable from the metadata listener,
and none of it is part of the documented API (it is not in /openapi.json): it is a client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from openimds.console.auth import PREFIX, Door, Endpoint, Visit
from openimds.console.pages import ConsolePages
from openimds.console.streams import Streams


@dataclass
class ConsoleAdmin:
    door: Door
    pages: ConsolePages
    streams: Streams

    def public_paths(self) -> list[str]:
        return [PREFIX, PREFIX + "/{rest:path}"]

    def errors(self) -> Mapping[type[Exception], int]:
        return {}

    def routes(self) -> list[BaseRoute]:
        return [
            Route(PREFIX, self.home, methods=["GET"], include_in_schema=False),
            Mount(PREFIX, routes=self._console_routes()),
        ]

    def _console_routes(self) -> list[BaseRoute]:
        door, pages, streams = self.door, self.pages, self.streams
        guarded = door.guarded
        return [
            _get("/", self.home),
            _get("/login", door.login_form),
            _post("/login", door.login),
            _post("/logout", door.logout),
            Mount("/static", StaticFiles(packages=[("openimds.console", "static")])),
            _get("/fleet", guarded(pages.fleet)),
            _get("/fleet/rows", guarded(pages.fleet_rows)),
            _get("/vms/{name}", guarded(pages.vm)),
            _get("/vms/{name}/instance", guarded(pages.vm_instance)),
            _get("/live", guarded(pages.live)),
            _get("/live/stream", guarded(streams.requests)),
            _get("/series.json", guarded(self.series)),
            _get("/series/stream", guarded(streams.series)),
            _get("/events", guarded(pages.events)),
            _get("/events/stream", guarded(streams.timeline)),
            _post("/events", guarded(pages.schedule)),
            _post("/events/drill", guarded(pages.drill)),
            _post("/events/{event_id}/{action}", guarded(pages.event_action)),
            _get("/keys", guarded(pages.keys)),
            _post("/keys/rotate", guarded(pages.rotate)),
            _get("/ca.pem", guarded(pages.ca_bundle)),
            _get("/faults", guarded(pages.faults)),
            _post("/faults", guarded(pages.add_fault)),
            _post("/faults/clear", guarded(pages.clear_faults)),
            _post("/faults/{rule_id}/delete", guarded(pages.remove_fault)),
        ]

    async def home(self, request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/fleet", status_code=303)

    async def series(self, visit: Visit) -> Response:
        return JSONResponse(await visit.api.get("/metrics/series"))


def _get(path: str, endpoint: Endpoint) -> Route:
    return Route(path, endpoint, methods=["GET"], include_in_schema=False)


def _post(path: str, endpoint: Endpoint) -> Route:
    return Route(path, endpoint, methods=["POST"], include_in_schema=False)

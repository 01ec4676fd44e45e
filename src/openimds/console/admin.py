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
        door, pages, streams = self.door, self.pages, self.streams
        guarded = door.guarded

        async def home(request: Request) -> Response:
            return RedirectResponse(f"{PREFIX}/fleet", status_code=303)

        async def series(visit: Visit) -> Response:
            return JSONResponse(await visit.api.get("/metrics/series"))

        def get(path: str, endpoint: Endpoint) -> Route:
            return Route(path, endpoint, methods=["GET"], include_in_schema=False)

        def post(path: str, endpoint: Endpoint) -> Route:
            return Route(path, endpoint, methods=["POST"], include_in_schema=False)

        return [
            Route(PREFIX, home, methods=["GET"], include_in_schema=False),
            Mount(
                PREFIX,
                routes=[
                    get("/", home),
                    get("/login", door.login_form),
                    post("/login", door.login),
                    post("/logout", door.logout),
                    Mount("/static", StaticFiles(packages=[("openimds.console", "static")])),
                    get("/fleet", guarded(pages.fleet)),
                    get("/fleet/rows", guarded(pages.fleet_rows)),
                    get("/vms/{name}", guarded(pages.vm)),
                    get("/vms/{name}/instance", guarded(pages.vm_instance)),
                    get("/live", guarded(pages.live)),
                    get("/live/stream", guarded(streams.requests)),
                    get("/series.json", guarded(series)),
                    get("/series/stream", guarded(streams.series)),
                    get("/events", guarded(pages.events)),
                    get("/events/stream", guarded(streams.timeline)),
                    post("/events", guarded(pages.schedule)),
                    post("/events/drill", guarded(pages.drill)),
                    post("/events/{event_id}/{action}", guarded(pages.event_action)),
                    get("/keys", guarded(pages.keys)),
                    post("/keys/rotate", guarded(pages.rotate)),
                    get("/ca.pem", guarded(pages.ca_bundle)),
                    get("/faults", guarded(pages.faults)),
                    post("/faults", guarded(pages.add_fault)),
                    post("/faults/clear", guarded(pages.clear_faults)),
                    post("/faults/{rule_id}/delete", guarded(pages.remove_fault)),
                ],
            ),
        ]

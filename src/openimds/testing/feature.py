"""The server's clock, seen and advanced through the admin API, for `openimds.testing`
driving a server in a subprocess (features.ALL).

GET  /clock            {"now": epoch seconds, "offset": seconds ahead of wall time}
POST /clock/advance    {"seconds": N}: move the clock forward (never back)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.runtime import Clock, Plug, Runtime


class ClockError(ValueError):
    """A clock change that cannot be made, worded for the caller."""


def install(runtime: Runtime) -> Plug:
    return Plug(admin=[ClockAdmin(runtime.clock)])


@dataclass
class ClockAdmin:
    clock: Clock

    def public_paths(self) -> list[str]:
        return []

    def errors(self) -> Mapping[type[Exception], int]:
        return {ClockError: 400}

    def routes(self) -> list[BaseRoute]:
        clock = self.clock

        def state() -> JSONResponse:
            return JSONResponse({"now": clock.now(), "offset": clock.offset})

        async def show(request: Request) -> Response:
            """
            responses:
              200:
                description: The server's time and how far it is ahead of wall time.
            """
            return state()

        async def advance(request: Request) -> Response:
            """
            requestBody:
              required: true
              content:
                application/json:
                  schema:
                    type: object
                    required: [seconds]
                    properties:
                      seconds: {type: number, minimum: 0}
            responses:
              200:
                description: The clock after the move.
              400:
                description: seconds is missing, not a number, or negative.
            """
            try:
                seconds = json.loads(await request.body()).get("seconds")
            except (ValueError, AttributeError):
                raise ClockError('expected {"seconds": N}') from None
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise ClockError("seconds: a number of seconds to move forward, 0 or more")
            clock.advance(float(seconds))
            return state()

        return [
            Route("/clock", show, methods=["GET"]),
            Route("/clock/advance", advance, methods=["POST"]),
        ]

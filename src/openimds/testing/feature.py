"""The server's clock, seen and advanced through the admin API, for `openimds.testing`
driving a server in a subprocess (features.ALL).

GET  /clock            {"now": epoch seconds, "offset": seconds ahead of wall time}
POST /clock/advance    {"seconds": N}: move the clock forward (never back)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.runtime import Clock, Plug, Runtime
from openimds.web.admin_app import json_body
from openimds.web.admin_errors import AdminError


class ClockError(AdminError, ValueError):
    """A clock change that cannot be made, worded for the caller."""


def install(runtime: Runtime) -> Plug:
    return Plug(admin=[ClockAdmin(runtime.clock)])


@dataclass
class ClockAdmin:
    clock: Clock

    def public_paths(self) -> list[str]:
        return []

    def errors(self) -> Mapping[type[Exception], int]:
        return {}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/clock", self.show, methods=["GET"]),
            Route("/clock/advance", self.advance, methods=["POST"]),
        ]

    async def show(self, request: Request) -> Response:
        """
        responses:
          200:
            description: The server's time and how far it is ahead of wall time.
        """
        return self._state()

    async def advance(self, request: Request) -> Response:
        """
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [seconds]
                properties:
                  seconds: {type: number, minimum: 0, maximum: 315360000}
        responses:
          200:
            description: The clock after the move.
          400:
            description: seconds is missing, not a number, negative, or would take the
              clock more than 315360000 s (ten years) ahead of wall time.
        """
        body = await json_body(request)
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ClockError('expected {"seconds": N}, N a number of seconds, 0 or more')
        try:
            self.clock.advance(float(seconds))
        except (ValueError, OverflowError) as exc:
            raise ClockError(f"seconds: {exc}") from None
        return self._state()

    def _state(self) -> JSONResponse:
        return JSONResponse({"now": self.clock.now(), "offset": self.clock.offset})

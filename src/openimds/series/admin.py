"""Admin API of the request figures (token-protected by the admin app).

GET /metrics/series?seconds=N   the last N seconds (1..900, default 900), per second:
                                requests, requests by route, 429s, p50 and p99 latency
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.series.sampler import SIZE, Sampler
from openimds.web.admin_errors import AdminError


class SeriesError(AdminError, ValueError):
    """A figures query that cannot be answered, worded for the caller."""


def seconds(raw: str | None) -> int:
    """The `seconds` parameter: a whole number from 1 to SIZE, SIZE when absent."""
    if raw is None:
        return SIZE
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= SIZE:
        raise SeriesError(f"seconds: expected a whole number from 1 to {SIZE}, got {raw!r}")
    return int(raw)


@dataclass
class SeriesAdmin:
    sampler: Sampler

    def public_paths(self) -> list[str]:
        return []

    def errors(self) -> Mapping[type[Exception], int]:
        return {}

    def routes(self) -> list[BaseRoute]:
        return [Route("/metrics/series", self.series, methods=["GET"])]

    async def series(self, request: Request) -> Response:
        """
        parameters:
          - name: seconds
            in: query
            schema: {type: integer, minimum: 1, maximum: 900, default: 900}
            description: How many of the last seconds (fewer while the server is younger).
        responses:
          200:
            description: >-
              Per-second figures, every array oldest first and of one length; end is the
              server clock's second of the newest point. Latency percentiles are estimated
              from the latency histogram's buckets; null for a second without requests.
            content:
              application/json:
                schema:
                  type: object
                  required: [step, end, requests, routes, throttled, p50_ms, p99_ms]
                  properties:
                    step: {type: integer, enum: [1]}
                    end: {type: integer}
                    requests: {type: array, items: {type: integer, minimum: 0}}
                    routes:
                      type: object
                      additionalProperties: {type: array, items: {type: integer, minimum: 0}}
                    throttled: {type: array, items: {type: integer, minimum: 0}}
                    p50_ms: {type: array, items: {type: number, nullable: true}}
                    p99_ms: {type: array, items: {type: number, nullable: true}}
          400:
            description: seconds is not a whole number from 1 to 900.
        """
        wanted = seconds(request.query_params.get("seconds"))
        return JSONResponse(self.sampler.chart(wanted))

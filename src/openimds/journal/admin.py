"""Admin API of the request journal (token-protected by the admin app).

GET    /requests?vm=NAME&path=PREFIX&status=S&after=SEQ&limit=N
                        the last requests (oldest first), redacted
GET    /requests/stream?vm=NAME&path=PREFIX&status=S&after=SEQ
                        new requests as Server-Sent Events (journal/stream.py), resumed
                        after `after` or the Last-Event-ID header
DELETE /requests        forget them

`status` is a code (429) or a class (4xx); `path` a prefix of the entry's path.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from openimds.inventory.live import LiveInventory
from openimds.journal.query import JournalError, Query, parse_query, whole_number
from openimds.journal.stream import follow, start_after
from openimds.web.metadata.request_ring import RequestRing

Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Response]])


class JournalOff(LookupError):
    """The journal is read while journal.size is 0."""


# The OpenAPI parameters of the filters both GET routes take, put before each route's own.
FILTERS = """
parameters:
  - {name: vm, in: query, schema: {type: string}, description: Only this VM's requests.}
  - {name: path, in: query, schema: {type: string}, description: A prefix of the path.}
  - name: status
    in: query
    schema: {type: string, pattern: "^([0-9]{1,3}|[1-5][xX][xX])$"}
    description: An exact status (429) or a class (4xx).
"""


def with_filters(func: Handler) -> Handler:
    """The route's YAML docstring (its OpenAPI description) with FILTERS first."""
    func.__doc__ = FILTERS + textwrap.dedent(func.__doc__ or "")
    return func


@dataclass
class JournalAdmin:
    journal: RequestRing | None
    inventory: LiveInventory
    # True once the server is stopping: open streams end at their next wake.
    stopping: Callable[[], bool] = lambda: False
    streams: int = 0  # open event streams (openimds_journal_streams in /metrics)

    def public_paths(self) -> list[str]:
        return []

    def errors(self) -> Mapping[type[Exception], int]:
        return {JournalError: 400, JournalOff: 409}

    def reading(self, request: Request) -> tuple[RequestRing, Query]:
        """The journal and what the request asks of it, or why it cannot be read."""
        if self.journal is None:
            raise JournalOff("the request journal is off (journal.size 0)")
        query = parse_query(request.query_params)
        if query.vm is not None and query.vm not in self.inventory.specs:
            raise JournalError(f"vm: no VM is named {query.vm!r}")
        return self.journal, query

    async def events(self, journal: RequestRing, query: Query, after: int) -> AsyncIterator[str]:
        self.streams += 1
        try:
            async for chunk in follow(journal, query, after, self.stopping):
                yield chunk
        finally:
            self.streams -= 1

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/requests", self.entries, methods=["GET"]),
            Route("/requests/stream", self.stream, methods=["GET"]),
            Route("/requests", self.clear, methods=["DELETE"]),
        ]

    @with_filters
    async def entries(self, request: Request) -> Response:
        """
          - {name: after, in: query, schema: {type: integer, minimum: 0}}
          - {name: limit, in: query, schema: {type: integer, minimum: 0}}
        responses:
          200:
            description: The journal's requests, oldest first (secrets redacted).
          400:
            description: A query parameter is not valid, or the VM is unknown.
          409:
            description: The journal is off (journal.size is 0).
        """
        journal, query = self.reading(request)
        after = whole_number(request.query_params, "after") or 0
        limit = whole_number(request.query_params, "limit")
        return JSONResponse(
            {"requests": journal.entries(query.vm, after, limit, query.keeps), "last": journal.seq}
        )

    @with_filters
    async def stream(self, request: Request) -> Response:
        """
          - name: after
            in: query
            schema: {type: integer, minimum: 0}
            description: Start after this sequence number (entries still kept come first).
          - name: Last-Event-ID
            in: header
            schema: {type: integer, minimum: 0}
            description: As after, and preferred to it (an EventSource sends it on reconnecting).
        responses:
          200:
            description: >-
              Server-Sent Events, open until the client or the server goes; each new request
              the filters keep is "id: SEQ", "event: request" and "data:" with the entry as
              GET /requests gives it; ": keep-alive" every 15 s.
            content:
              text/event-stream:
                schema: {type: string}
          400:
            description: A query parameter or Last-Event-ID is not valid, or the VM is unknown.
          409:
            description: The journal is off (journal.size is 0).
        """
        journal, query = self.reading(request)
        resume = whole_number(request.headers, "Last-Event-ID")
        if resume is None:
            resume = whole_number(request.query_params, "after")
        return StreamingResponse(
            self.events(journal, query, start_after(resume, journal.seq)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def clear(self, request: Request) -> Response:
        """
        responses:
          200:
            description: The journal is empty.
        """
        if self.journal is not None:
            self.journal.clear()
        return JSONResponse({"cleared": True})


class StreamsCollector(Collector):
    def __init__(self, admin: JournalAdmin) -> None:
        self.admin = admin

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "openimds_journal_streams",
            "Open request-journal event streams (GET /requests/stream)",
            value=self.admin.streams,
        )

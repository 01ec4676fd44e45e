"""What the console pushes to an open page with Server-Sent Events: requests as they arrive,
chart points once a second, the events timeline when it changes. One stream per open
page, driven by the server; the browser never polls.

Each stream reads the documented admin API in-process: `/requests/stream` is passed on
row by row (rendered as HTML), `/metrics/series` and `/events` are read once a second and
sent only when something changed. A stream ends when the page goes away (Starlette
cancels it on disconnect) or the server stops.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Final

from starlette.responses import Response, StreamingResponse

from openimds.console.api import ApiError
from openimds.console.auth import Visit
from openimds.console.pages import ConsolePages
from openimds.console.render import Pages

SSE_HEADERS: Final[dict[str, str]] = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
TICK: Final[float] = 1.0


def event(name: str, data: str) -> bytes:
    """One SSE event; `data` may hold newlines (each line gets its own `data:` field)."""
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {name}\n{lines}\n".encode()


def sse_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, str]]:
    """(event name, data) of a Server-Sent Events body, however its chunks are split."""

    async def parse() -> AsyncIterator[tuple[str, str]]:
        buffer = b""
        async for chunk in chunks:
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                name, data = "message", []
                for line in block.decode().split("\n"):
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        name = value
                    elif field == "data":
                        data.append(value)
                if data:
                    yield name, "\n".join(data)

    return parse()


class Streams:
    def __init__(self, pages: Pages, console: ConsolePages, stopping: Callable[[], bool]) -> None:
        self.pages = pages
        self.console = console
        # True once the server is stopping: a stream ends at its next tick, so an open
        # page cannot hold a shutdown up (the journal's own stream ends the same way).
        self.stopping = stopping

    def _respond(self, body: AsyncIterator[bytes]) -> Response:
        return StreamingResponse(body, media_type="text/event-stream", headers=SSE_HEADERS)

    async def _ticks(self) -> AsyncIterator[None]:
        """Once a second until the server stops."""
        while not self.stopping():
            yield
            await asyncio.sleep(TICK)

    async def requests(self, visit: Visit) -> Response:
        query = visit.request.query_params
        params = {k: query.get(k) or None for k in ("vm", "path", "status")}
        params["after"] = query.get("after") or None
        upstream = visit.api.stream("/requests/stream", params)
        try:
            await anext(upstream)  # the journal's answer has started
        except ApiError as exc:
            return Response(json.dumps({"error": str(exc)}), exc.answer.status)

        async def rows() -> AsyncIterator[bytes]:
            try:
                yield b": connected\n\n"  # the page shows the stream is live at once
                async for name, data in sse_events(upstream):
                    if name == "request":
                        row = self.pages.render("_live_row.html", entry=json.loads(data))
                        yield event("request", row)
            finally:
                # The page went away: end the journal's stream now, not when the
                # collector gets to the abandoned generator.
                await upstream.aclose()

        return self._respond(rows())

    async def series(self, visit: Visit) -> Response:
        async def points() -> AsyncIterator[bytes]:
            last_end = None
            async for _ in self._ticks():
                series = await visit.api.get("/metrics/series", {"seconds": 5})
                if series["end"] != last_end:
                    last_end = series["end"]
                    yield event("series", json.dumps(series))
                else:
                    yield b": tick\n\n"  # also how a closed page is noticed

        return self._respond(points())

    async def timeline(self, visit: Visit) -> Response:
        vm = visit.request.query_params.get("vm") or None
        csrf = visit.session.csrf
        back = visit.request.query_params.get("back") or "/console/events"

        async def frames() -> AsyncIterator[bytes]:
            shown = None
            known: dict[str, str | None] = {}
            async for _ in self._ticks():
                context = await self.console.timeline(visit, vm, known)
                html = self.pages.render("_timeline.html", csrf=csrf, back=back, **context)
                if html != shown:
                    shown = html
                    yield event("timeline", html)
                else:
                    yield b": tick\n\n"

        return self._respond(frames())

"""The journal as Server-Sent Events (GET /requests/stream): each new entry a reader's
query keeps is one event, `id: <seq>`, `event: request`, `data: <the entry as GET
/requests gives it>`.

How a stream learns of new entries: while open it wakes every WAKE seconds and compares
the journal's sequence number with the last one it sent. The metadata listener knows
nothing of readers (no callback, no event to set, nothing per request beyond the
journal's own append), so streams cost the hot path nothing; an open stream costs a few
wake-ups a second and an integer compare while nothing happens. A comment line every
KEEP_ALIVE seconds keeps proxies from closing a quiet stream.

A stream ends when its client goes (Starlette cancels the answer on the disconnect) or
when the server stops (`stopping`, read at each wake): uvicorn's graceful shutdown waits
for every open answer, and this one would never end by itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

from openimds.journal.query import Query
from openimds.web.metadata.request_ring import RequestRing

WAKE = 0.15  # seconds between looks at the journal: new entries show within this
KEEP_ALIVE = 15.0  # seconds of silence before a comment line
KEEP_ALIVE_LINE = ": keep-alive\n\n"


def render(entry: dict[str, Any]) -> str:
    # Starlette's JSONResponse rendering, so an event's data is the entry as GET
    # /requests writes it (compact JSON has no line breaks, which would end the field).
    return json.dumps(entry, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def event(entry: dict[str, Any]) -> str:
    return f"id: {entry['seq']}\nevent: request\ndata: {render(entry)}\n\n"


def start_after(requested: int | None, seq: int) -> int:
    """The sequence number a stream starts after: the one asked for (Last-Event-ID or
    `after`), or the journal's newest (only new entries). A number beyond the newest
    comes from before a restart (numbering starts again at 1): everything kept is new to
    that reader."""
    if requested is None:
        return seq
    return 0 if requested > seq else requested


async def follow(
    journal: RequestRing,
    query: Query,
    after: int,
    stopping: Callable[[], bool],
    *,
    wake: float = WAKE,
    keep_alive: float = KEEP_ALIVE,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncGenerator[str, None]:
    """The events of the entries after `after` that `query` keeps, as they come; the
    entries of one wake in one chunk."""
    quiet_since = clock()
    while not stopping():
        if journal.seq > after:
            newest = journal.seq
            kept = journal.entries(query.vm, after, keep=query.keeps)
            after = newest
            if kept:
                quiet_since = clock()
                yield "".join(event(entry) for entry in kept)
        if clock() - quiet_since >= keep_alive:
            quiet_since = clock()
            yield KEEP_ALIVE_LINE
        await asyncio.sleep(wake)

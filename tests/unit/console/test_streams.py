"""Server-Sent Events as the console writes and reads them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from openimds.console.streams import event, sse_events


def test_an_event_puts_each_line_of_data_in_its_own_field() -> None:
    assert event("timeline", "<p>a</p>\n<p>b</p>") == (
        b"event: timeline\ndata: <p>a</p>\ndata: <p>b</p>\n\n"
    )


def test_events_are_read_however_the_chunks_are_split() -> None:
    body = (
        b": keep-alive\n\n"
        b'id: 7\nevent: request\ndata: {"seq": 7}\n\n'
        b"event: request\ndata: one\ndata: two\n\n"
        b"data: plain\n\n"
    )

    async def split(size: int) -> list[tuple[str, str]]:
        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), size):
                yield body[start : start + size]

        return [item async for item in sse_events(chunks())]

    expected = [("request", '{"seq": 7}'), ("request", "one\ntwo"), ("message", "plain")]
    for size in (1, 3, 7, len(body)):
        assert asyncio.run(split(size)) == expected

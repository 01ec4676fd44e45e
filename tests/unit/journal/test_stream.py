"""The journal's event stream: the event format, where a stream starts, following the
journal (filtered, batched, keep-alive, ended by the server stopping), and a client
that goes ending the stream through the whole admin app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from starlette.types import Message

from openimds.inventory.live import LiveInventory
from openimds.journal.admin import JournalAdmin
from openimds.journal.query import Query
from openimds.journal.stream import KEEP_ALIVE, KEEP_ALIVE_LINE, event, follow, start_after
from openimds.web.admin_app import build_admin_app
from openimds.web.metadata.request_ring import RequestRing
from openimds.web.metrics import RequestMetrics
from tests.support.clock import FakeClock
from tests.support.imds import vm_spec

TOKEN = "unit-test-token-0123456789"


def test_an_event_is_the_entry_as_get_requests_renders_it() -> None:
    journal = RequestRing(size=1)
    journal.record("vm-a", "GET", "/caf\xe9?x=1".encode("latin-1"), [], 200, "r", "10.0.0.4")
    (entry,) = journal.entries()
    text = event(entry)
    head, data = text.removesuffix("\n\n").rsplit("\n", 1)
    assert head == "id: 1\nevent: request"
    assert data.startswith("data: {") and "\n" not in data and text.endswith("}\n\n")
    assert json.loads(data.removeprefix("data: ")) == entry
    assert '"path":"/café"' in data  # compact, not ASCII-escaped: JSONResponse's rendering


@pytest.mark.parametrize(
    ("requested", "seq", "after"),
    [(None, 7, 7), (3, 7, 3), (7, 7, 7), (0, 7, 0), (9, 7, 0), (5, 0, 0)],
)
def test_a_stream_starts_after_what_was_asked_or_the_newest(
    requested: int | None, seq: int, after: int
) -> None:
    # A number beyond the newest comes from before a restart: everything kept is new.
    assert start_after(requested, seq) == after


def _record(journal: RequestRing, target: bytes, status: int, vm: str = "vm-a") -> None:
    journal.record(vm, "GET", target, [], status, "instance", "127.0.0.1")


def _seqs(chunk: str) -> list[int]:
    return [int(line[4:]) for line in chunk.splitlines() if line.startswith("id: ")]


def test_a_stream_sends_what_its_query_keeps_in_one_chunk_per_wake_until_stopped() -> None:
    async def scenario() -> None:
        journal = RequestRing(size=10)
        _record(journal, b"/old", 404)
        stopped = False
        stream = follow(journal, Query(status=(400, 499)), 0, lambda: stopped, wake=0.001)
        assert _seqs(await anext(stream)) == [1]  # kept from before: sent first
        _record(journal, b"/a", 200)
        _record(journal, b"/b", 429)
        _record(journal, b"/c", 404, vm="vm-b")
        assert _seqs(await anext(stream)) == [3, 4]
        stopped = True
        with pytest.raises(StopAsyncIteration):
            await anext(stream)

    asyncio.run(scenario())


def test_a_quiet_stream_sends_a_comment_every_keep_alive_seconds() -> None:
    async def scenario() -> None:
        journal = RequestRing(size=10)
        clock = FakeClock(1000.0)
        stream = follow(journal, Query(), 0, lambda: False, wake=0.001, clock=clock)
        pending = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.05)
        assert not pending.done()  # nothing new and not yet quiet for long
        clock.advance(KEEP_ALIVE)
        assert await pending == KEEP_ALIVE_LINE
        _record(journal, b"/x", 200)
        assert _seqs(await anext(stream)) == [1]
        clock.advance(KEEP_ALIVE - 1)  # an event restarts the quiet time
        pending = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.05)
        assert not pending.done()
        clock.advance(1)
        assert await pending == KEEP_ALIVE_LINE
        await stream.aclose()

    asyncio.run(scenario())


def test_a_client_that_goes_ends_its_stream_through_the_admin_app() -> None:
    journal = RequestRing(size=10)
    admin = JournalAdmin(journal, LiveInventory([vm_spec("vm-a")]))
    app = build_admin_app(token=TOKEN, metrics=RequestMetrics(), features=[admin])
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/requests/stream",
        "raw_path": b"/requests/stream",
        "query_string": b"after=0",
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {TOKEN}".encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8081),
    }
    sent: list[Message] = []

    async def scenario() -> None:
        gone = asyncio.Event()
        requests = _messages(gone)

        async def receive() -> Message:
            return await anext(requests)

        async def send(message: Message) -> None:
            sent.append(message)

        _record(journal, b"/x", 200)
        answer = asyncio.ensure_future(app(scope, receive, send))
        while not any(m.get("body") for m in sent):
            await asyncio.sleep(0.01)
        assert admin.streams == 1
        gone.set()
        await asyncio.wait_for(answer, timeout=2)
        assert admin.streams == 0

    asyncio.run(scenario())
    assert sent[0]["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    assert _seqs(sent[1]["body"].decode()) == [1]


async def _messages(gone: asyncio.Event) -> AsyncIterator[Message]:
    yield {"type": "http.request", "body": b"", "more_body": False}
    await gone.wait()
    while True:
        yield {"type": "http.disconnect"}

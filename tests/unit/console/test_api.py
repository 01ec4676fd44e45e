"""The console's in-process admin API client, against a small ASGI application: the token
is sent, errors keep the API's message, and a stream is passed on chunk by chunk and ended
when the reader stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from openimds.console.api import AdminApi, ApiError

TOKEN = "token-0123456789abcdef"


def application(closed: asyncio.Event) -> Starlette:
    async def echo(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": "unauthorized"}, 401)
        return JSONResponse(
            {
                "method": request.method,
                "query": dict(request.query_params),
                "body": (await request.body()).decode(),
                "type": request.headers.get("content-type"),
            }
        )

    async def refuse(request: Request) -> Response:
        return JSONResponse({"error": "no VM is named 'x'"}, 404)

    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            try:
                for n in range(1000):
                    yield f"chunk {n}\n".encode()
                    await asyncio.sleep(0.001)
            finally:
                closed.set()

        return StreamingResponse(chunks(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/echo", echo, methods=["GET", "POST", "DELETE"]),
            Route("/refuse", refuse),
            Route("/stream", stream),
        ]
    )


def test_get_and_send_carry_the_token_query_and_json_body() -> None:
    async def run() -> None:
        api = AdminApi(application(asyncio.Event()), TOKEN, ("127.0.0.1", 5000))
        got = await api.get("/echo", {"vm": "a b", "skip": None, "limit": 5})
        assert got == {
            "method": "GET",
            "query": {"vm": "a b", "limit": "5"},
            "body": "",
            "type": None,
        }
        sent = await api.send("POST", "/echo", {"type": "Reboot"})
        assert sent["body"] == '{"type": "Reboot"}' and sent["type"] == "application/json"
        assert (await api.send("DELETE", "/echo"))["method"] == "DELETE"

    asyncio.run(run())


def test_an_api_error_keeps_the_status_and_the_message() -> None:
    async def run() -> None:
        api = AdminApi(application(asyncio.Event()), TOKEN)
        with pytest.raises(ApiError) as caught:
            await api.get("/refuse")
        assert caught.value.answer.status == 404
        assert str(caught.value) == "no VM is named 'x'"
        wrong = AdminApi(application(asyncio.Event()), "wrong-token-0123456789")
        with pytest.raises(ApiError, match="unauthorized"):
            await wrong.get("/echo")

    asyncio.run(run())


def test_a_stream_arrives_in_chunks_and_stops_when_the_reader_does() -> None:
    async def run() -> None:
        closed = asyncio.Event()
        api = AdminApi(application(closed), TOKEN)
        stream = api.stream("/stream")
        assert await anext(stream) == b""  # started, with 200
        first = [await anext(stream) for _ in range(3)]
        assert first == [b"chunk 0\n", b"chunk 1\n", b"chunk 2\n"]
        await stream.aclose()
        await asyncio.wait_for(closed.wait(), 2)  # the API's generator was ended too

    asyncio.run(run())


def test_a_stream_that_does_not_start_raises_the_api_error() -> None:
    async def run() -> None:
        api = AdminApi(application(asyncio.Event()), TOKEN)
        with pytest.raises(ApiError, match="no VM"):
            await anext(api.stream("/refuse"))

    asyncio.run(run())


def test_a_failing_route_is_a_500_answer_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    async def run() -> None:
        api = AdminApi(Starlette(routes=[Route("/broken", broken)]), TOKEN)
        with pytest.raises(ApiError) as caught:
            await api.get("/broken")
        assert caught.value.answer.status == 500

    asyncio.run(run())
    failures = [r for r in caplog.records if r.name == "openimds.console"]
    assert len(failures) == 1 and "GET /broken" in failures[0].getMessage()

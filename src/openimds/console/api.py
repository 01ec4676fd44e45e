"""The console's only way to the fleet: the documented admin API, called in-process.

Each call is a real ASGI request through the whole admin application (token check,
request log, routes, error map) with the admin token the operator logged in with, so the
console can do nothing a script cannot, and its answers and errors are the API's own. No
socket is involved: the request and its answer are handed over in memory. Streams (Server-
Sent Events) are passed on chunk by chunk as the API writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.types import ASGIApp, Message

Params = Mapping[str, str | int | None]
log = logging.getLogger("openimds.console")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> str:
        """The API's error message (its `error` field), or the status when there is none."""
        try:
            body = self.json()
        except ValueError:
            return f"HTTP {self.status}"
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return str(body["error"])
        return f"HTTP {self.status}"


class ApiError(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.error)
        self.answer = answer


@dataclass(frozen=True, slots=True)
class AdminApi:
    """The admin application, as seen by one console request (its peer is logged)."""

    app: ASGIApp
    token: str
    peer: tuple[str, int] | None = None

    async def get(self, path: str, params: Params | None = None) -> Any:
        """The JSON of a GET, or ApiError with the API's own message."""
        return self._ok(await self.call("GET", path, params))

    async def send(
        self, method: str, path: str, body: object = None, params: Params | None = None
    ) -> Any:
        """The JSON answer of a change (POST, PUT, DELETE), or ApiError."""
        data = b"" if body is None else json.dumps(body).encode()
        return self._ok(await self.call(method, path, params, data))

    async def call(
        self, method: str, path: str, params: Params | None = None, body: bytes = b""
    ) -> Answer:
        status, headers, chunks = 500, {}, []
        async with self._request(method, path, params, body) as messages:
            async for message in messages:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    headers = _headers(message)
                else:
                    chunks.append(message.get("body", b""))
        return Answer(status, headers, b"".join(chunks))

    async def stream(self, path: str, params: Params | None = None) -> AsyncGenerator[bytes, None]:
        """The body of a streaming GET, chunk by chunk, after one empty chunk that says the
        answer has started with 200 (else ApiError, with the API's message). Closing the
        iterator ends the API's side too."""
        async with self._request("GET", path, params, b"") as messages:
            async for message in messages:
                if message["type"] == "http.response.start":
                    if message["status"] != 200:
                        rest = [m.get("body", b"") async for m in messages]
                        answer = Answer(message["status"], _headers(message), b"".join(rest))
                        raise ApiError(answer)
                    yield b""
                elif message.get("body"):
                    yield message["body"]

    @staticmethod
    def _ok(answer: Answer) -> Any:
        if answer.status >= 400:
            raise ApiError(answer)
        return answer.json() if answer.body else None

    @contextlib.asynccontextmanager
    async def _request(
        self, method: str, path: str, params: Params | None, body: bytes
    ) -> AsyncIterator[AsyncIterator[Message]]:
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        headers = [(b"authorization", f"Bearer {self.token}".encode())]
        if body:
            headers.append((b"content-type", b"application/json"))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": self.peer,
            "server": ("console", 0),
        }
        outbox: asyncio.Queue[Message | None] = asyncio.Queue()
        disconnected = asyncio.Event()
        sent_body = False

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            await outbox.put(message)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception:
                # Starlette has answered 500 and re-raised for the server to log: over a
                # socket uvicorn would, here it is this call's to do (the page shows the 500).
                log.exception("admin API request from the console failed: %s %s", method, path)
            finally:
                await outbox.put(None)

        task = asyncio.create_task(run())

        async def messages() -> AsyncIterator[Message]:
            while (message := await outbox.get()) is not None:
                yield message
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    return

        try:
            yield messages()
        finally:
            disconnected.set()
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _headers(message: Message) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in message.get("headers", [])}

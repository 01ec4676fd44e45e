"""A Server-Sent Events reader over a raw socket, for the admin API's event streams:
each read waits at most its timeout, and `close` really hangs up (a thread blocked in
an httpx read would keep the connection open after it was closed)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from tests.support.rawhttp import RawConnection, RawResponse


@dataclass(frozen=True)
class Block:
    """One block of the stream (the lines up to a blank line)."""

    lines: tuple[str, ...]

    @property
    def comment(self) -> bool:
        return all(line.startswith(":") for line in self.lines)

    def field(self, name: str) -> str | None:
        for line in self.lines:
            key, _, value = line.partition(": ")
            if key == name:
                return value
        return None

    @property
    def entry(self) -> dict[str, Any]:
        data = self.field("data")
        assert data is not None, self.lines
        parsed: dict[str, Any] = json.loads(data)
        return parsed


class EventReader(RawConnection):
    """A GET of an event stream on its own connection, its head read; then its blocks."""

    def __init__(self, admin_url: str, token: str, target: str, headers: str = "") -> None:
        super().__init__(admin_url)
        self.send(
            f"GET {target} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {token}\r\n"
            f"{headers}\r\n".encode()
        )
        self.head: RawResponse = self.read_response(head=True)
        self.text = ""  # the body, de-chunked, not yet split into blocks
        self.ended = False

    def block(self, timeout: float = 1.0) -> Block | None:
        """The next block within `timeout` seconds; None if none came or the stream ended."""
        deadline = time.monotonic() + timeout
        while "\n\n" not in self.text:
            if self.ended or not self._read_chunk(deadline):
                return None
        raw, _, self.text = self.text.partition("\n\n")
        return Block(tuple(raw.split("\n")))

    def event(self, timeout: float = 1.0) -> Block | None:
        """The next block that is not a comment."""
        deadline = time.monotonic() + timeout
        while (found := self.block(max(0.0, deadline - time.monotonic()))) is not None:
            if not found.comment:
                return found
        return None

    def events(self, count: int, timeout: float = 2.0) -> list[Block]:
        deadline = time.monotonic() + timeout
        found: list[Block] = []
        while len(found) < count:
            block = self.event(max(0.0, deadline - time.monotonic()))
            if block is None:
                break
            found.append(block)
        return found

    def _read_chunk(self, deadline: float) -> bool:
        """One chunk of the chunked body into `text`; False at the deadline or the end."""
        while True:
            size_line, crlf, rest = self.buffer.partition(b"\r\n")
            if crlf:
                size = int(size_line, 16)
                if size == 0:
                    self.ended = True
                    return False
                if len(rest) >= size + 2:
                    self.text += rest[:size].decode()
                    self.buffer = rest[size + 2 :]
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return False
            except ConnectionResetError:
                data = b""
            if not data:
                self.ended = True
                return False
            self.buffer += data

"""A raw-socket HTTP/1.1 client for protocol-level tests: exact bytes out, parsed answers in.

httpx would hide what these tests look at (pipelining, half-sent requests, the server
closing the connection), so requests are written by hand and answers are parsed with
the Content-Length the server sends.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Self
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def header_count(self, name: str) -> int:
        return sum(1 for key, _ in self.headers if key.lower() == name.lower())


class RawConnection:
    def __init__(self, url: str, *, source: str | None = None, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        self.sock = socket.create_connection(
            (host, port), timeout=timeout, source_address=(source, 0) if source else None
        )
        self.buffer = b""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def read_response(self, *, head: bool = False) -> RawResponse:
        """One response; after a HEAD request there is no body whatever Content-Length says."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"closed before a full response head: {self.buffer!r}")
        raw_head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        version, status, reason = lines[0].split(" ", 2)
        headers = [(k, v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
        response = RawResponse(version, int(status), reason, headers, b"")
        length = 0 if head else int(response.header("content-length") or 0)
        while len(self.buffer) < length:
            if not self._fill():
                raise ConnectionError("closed in the middle of a body")
        response.body, self.buffer = self.buffer[:length], self.buffer[length:]
        return response

    def is_closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the server closes (EOF or reset) with nothing more to read."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def get(path: str, *, metadata: bool = True, extra: str = "", version: str = "1.1") -> bytes:
    """The bytes of a GET request."""
    header = "Metadata: true\r\n" if metadata else ""
    return f"GET {path} HTTP/{version}\r\nHost: 169.254.169.254\r\n{header}{extra}\r\n".encode()


def exchange(url: str, request: bytes, *, head: bool = False) -> RawResponse:
    """Send one request on a fresh connection and read one answer."""
    with RawConnection(url) as conn:
        conn.send(request)
        return conn.read_response(head=head)

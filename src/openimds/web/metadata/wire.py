"""Writing answers on the wire: a core Response as HTTP/1.1 bytes, split around the Date
value so a cached answer is one join and one write (docs/performance.md)."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from openimds.core.http import Response


@dataclass(slots=True)
class Cached:
    head: bytes  # status line and headers up to the Date value
    tail: bytes  # end of headers and the body
    route: str
    status: int
    valid_until: float | None = None  # epoch seconds; None: as long as the VM revision


def encode(response: Response, route: str, close: bool, server_token: bytes) -> Cached:
    """The answer's bytes up to the Date value and after it; `server_token` is the whole
    `Server: ...` header line."""
    reason = HTTPStatus(response.status).phrase.encode()
    extra = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in response.headers)
    head = b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (response.status, reason),
            b"Content-Type: ",
            response.content_type.encode(),
            b"\r\n",
            b"Content-Length: %d\r\n" % len(response.body),
            extra,
            b"Connection: close\r\n" if close else b"",
            server_token,
            b"Date: ",
        )
    )
    return Cached(head, b"\r\n\r\n" + response.body, route, response.status, response.valid_until)

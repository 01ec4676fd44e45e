"""The wire both ways: a request as the core sees it, from the raw target and headers;
a core Response as HTTP/1.1 bytes, split around the Date value so a cached answer is one
join and one write (docs/performance.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl

from openimds.core.http import Request, Response


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


def core_request(
    method: str, target: bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes, peer: str
) -> Request:
    """The core's view of a request: the raw target split into path and query, header
    names lower-cased. The admin API's previews (fleet/preview.py) build theirs here too,
    so a preview asks the core exactly what the listener would."""
    path, _, query = target.decode("latin-1").partition("?")
    if path.startswith(("http://", "https://")):
        # RFC 9112 3.2.2: a server must accept the absolute form (what a client that
        # believes it talks to a proxy sends); only its path counts here.
        path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
    return Request(
        method=method,
        path=path,
        query=tuple(parse_qsl(query, keep_blank_values=True)),
        headers=tuple((n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in headers),
        body=body,
        peer=peer,
    )

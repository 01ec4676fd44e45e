"""What the long runs share: a server to run against, reading its memory and descriptors,
and the answers it wrote, parsed loosely enough for whatever was asked."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.support.load import open_fds, rss_bytes

STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


@dataclass
class Usage:
    rss: int
    fds: int

    @classmethod
    def of(cls, pid: int) -> Usage:
        return cls(rss_bytes(pid), open_fds(pid))


def statuses(stream: bytes) -> list[int] | None:
    """The statuses of the answers in `stream`, in order; None when it is not a sequence
    of HTTP answers (each one: a status line, a head, a Content-Length body, except
    after a HEAD request, when the next answer follows the head at once)."""
    found: list[int] = []
    at = 0
    while at < len(stream):
        match = STATUS_LINE.match(stream, at)
        if match is None:
            return None
        end = stream.find(b"\r\n\r\n", at)
        if end < 0:
            return None
        head = stream[at:end]
        length = re.search(rb"\r\nContent-Length: (\d+)", head)
        found.append(int(match.group(1)))
        at = end + 4
        if length and not stream.startswith(b"HTTP/1.", at):  # after a HEAD: no body
            at += int(length.group(1))
    return found


def log_problems(text: str) -> list[str]:
    """Lines of a server log that say something went wrong inside the server."""
    return [
        line[:300]
        for line in text.splitlines()
        if "Traceback" in line or '"level":"error"' in line or '"level": "error"' in line
    ]

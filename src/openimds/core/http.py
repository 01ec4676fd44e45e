"""Request and response values exchanged between the HTTP adapter and the core."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

JSON: Final[str] = "application/json; charset=utf-8"
TEXT: Final[str] = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed HTTP request. Header names are lower-case; values keep their case."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    peer: str = ""

    def header(self, name: str) -> str | None:
        """The first value of a header, or None. `name` must be lower-case."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def param(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def segments(self) -> tuple[str, ...]:
        """Path segments, percent-decoded, without empty ones from a trailing slash."""
        return tuple(unquote(s) for s in self.path.split("/") if s)


@dataclass(frozen=True, slots=True)
class Response:
    """A finished answer. `cacheable` means: a pure function of (request, VM revision),
    up to `valid_until` when that is set."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()
    cacheable: bool = False
    # For a cacheable answer that depends on the time as well (a token's countdown): the
    # epoch second from which the bytes are stale. None: valid for the whole VM revision.
    valid_until: float | None = None
    # The answer changed state that answers cached earlier for this VM may reflect (a new
    # token replaced a cached one): the adapter drops the VM's cached answers.
    drops_cached: bool = False

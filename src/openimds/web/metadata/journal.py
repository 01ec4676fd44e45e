"""The request journal: the last N requests of each VM on the metadata listener, for
tests ("my agent asked for api-version X with `Metadata: true`") and operators
(`openimds requests`).

The listener appends a tuple of references it already holds (the raw target, the header
list, the status) to a bounded ring per VM: no decoding, no copying on the request path.
Decoding happens when someone reads the journal, and so does redaction: secret headers
and query parameters are shown as "[redacted]" and no answer body is ever kept, so tokens
and secrets never leave the server through it (docs/testing.md, "The request journal").
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

REDACTED = "[redacted]"
# Header names whose values are credentials (Arc's Basic key, App Service's and Service
# Fabric's secrets, bearer tokens), and name fragments that mark one.
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-identity-header", "secret"}
)
_SECRET_MARKS = ("secret", "token", "password", "key", "signature", "sig")

Entry = tuple[int, float, str, bytes, list[tuple[bytes, bytes]], int, str, str, str]


class Journal:
    """Bounded rings of requests, one per VM name ("-" for unknown callers)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.seq = 0
        self._rings: dict[str, deque[Entry]] = {}

    def record(
        self,
        vm: str,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        status: int,
        route: str,
        peer: str,
    ) -> None:
        ring = self._rings.get(vm)
        if ring is None:
            ring = self._rings[vm] = deque(maxlen=self.size)
        self.seq += 1
        ring.append((self.seq, time.time(), vm, target, headers, status, route, peer, method))

    def recent(self, vm: str, since: float) -> int:
        """How many of `vm`'s journaled requests came after `since` (epoch seconds).
        Newest first, stopping at the first older one: the cost is the count, not the
        ring. A ring holds at most `size`, so a busier VM counts as `size`."""
        count = 0
        for entry in reversed(self._rings.get(vm, ())):
            if entry[1] <= since:
                break
            count += 1
        return count

    def clear(self) -> None:
        self._rings.clear()

    def entries(
        self,
        vm: str | None = None,
        after: int = 0,
        limit: int | None = None,
        keep: Callable[[Entry], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Requests in the order they came (oldest first), decoded and redacted; only
        `vm`'s when given, only those after sequence number `after` that `keep` accepts
        (checked before decoding), the last `limit`."""
        rings = [self._rings.get(vm, deque())] if vm is not None else self._rings.values()
        newer = (e for ring in rings for e in _after(ring, after))
        picked = sorted(newer if keep is None else filter(keep, newer), key=lambda e: e[0])
        if limit is not None:
            picked = picked[-limit:] if limit > 0 else []
        return [decode(entry) for entry in picked]


def _after(ring: deque[Entry], after: int) -> Iterable[Entry]:
    """The ring's entries after sequence number `after`, read from the newest end: a
    stream that follows the journal reads what is new, not every ring in full."""
    if not ring or ring[-1][0] <= after:
        return ()
    if ring[0][0] > after:
        return ring
    newer: list[Entry] = []
    for entry in reversed(ring):
        if entry[0] <= after:
            break
        newer.append(entry)
    newer.reverse()
    return newer


def decode(entry: Entry) -> dict[str, Any]:
    seq, at, vm, target, headers, status, route, peer, method = entry
    path, _, query = target.decode("latin-1").partition("?")
    view: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "method": method,
        "path": path,
        "query": {k: _shown(k, v) for k, v in parse_qsl(query, keep_blank_values=True)},
        "headers": {
            name: _shown(name, value)
            for name, value in ((n.decode("latin-1"), v.decode("latin-1")) for n, v in headers)
        },
        "vm": None if vm == "-" else vm,
        "status": status,
        "peer": peer,
    }
    if route.startswith("hook:"):
        view["fault"] = route[5:]
    return view


def _shown(name: str, value: str) -> str:
    lower = name.lower()
    if lower in _SECRET_HEADERS or any(mark in lower for mark in _SECRET_MARKS):
        return REDACTED
    return value

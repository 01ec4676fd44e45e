"""The request journal: the last N requests of each VM on the metadata listener, for
tests ("my agent asked for api-version X with `Metadata: true`") and operators
(`openimds requests`).

The listener records references it already holds (the raw target, the header list, the
status) in a bounded ring per VM: no decoding, no copying on the request path. Decoding
happens when someone reads the journal, and so does redaction: secret headers and query
parameters are shown as "[redacted]" and no answer body is ever kept, so tokens and
secrets never leave the server through it (docs/testing.md, "The request journal").

A ring keeps its sequence numbers and times in arrays (no object per request), and a
request equal to the one before it in the ring (an agent polling the same path) shares
that one's objects. So a ring holds objects only for the distinct requests among its
last N. With one tuple and a header list per entry, a fleet's rings (N entries for each
of a thousand busy VMs: memory touched once and long ago) cost the listener a fifth of
its throughput, against one VM's ring that stays in the CPU cache (docs/performance.md).
"""

from __future__ import annotations

import itertools
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
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
# What a request was: target, headers, status, route, peer, method.
_Request = tuple[bytes, list[tuple[bytes, bytes]], int, str, str, str]


class RequestRing:
    """Bounded rings of requests, one per VM name ("-" for unknown callers)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.seq = 0
        self._rings: dict[str, _Ring] = {}

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
            ring = self._rings[vm] = _Ring(vm)
        self.seq += 1
        request = (target, headers, status, route, peer, method)
        requests, at = ring.requests, ring.next
        if requests and request == requests[at - 1]:
            request = requests[at - 1]
        if len(requests) < self.size:  # filling up
            ring.seqs.append(self.seq)
            ring.times.append(time.time())
            requests.append(request)
        else:  # full: the oldest entry, at `next`, makes way
            ring.seqs[at] = self.seq
            ring.times[at] = time.time()
            requests[at] = request
            ring.next = at + 1 if at + 1 < self.size else 0

    def clear(self) -> None:
        self._rings.clear()

    def recent(self, vm: str, since: float) -> int:
        """How many of `vm`'s journaled requests came after `since` (epoch seconds).
        Newest first, stopping at the first older one: the cost is the count, not the
        ring. A ring holds at most `size`, so a busier VM counts as `size`."""
        ring = self._rings.get(vm)
        count = 0
        for at in ring.newest_times() if ring is not None else ():
            if at <= since:
                break
            count += 1
        return count

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
        if vm is None:
            rings = list(self._rings.values())
        else:
            rings = [self._rings[vm]] if vm in self._rings else []
        newer = (e for ring in rings for e in ring.after(after))
        picked = sorted(newer if keep is None else filter(keep, newer), key=lambda e: e[0])
        if limit is not None:
            picked = picked[-limit:] if limit > 0 else []
        return [decode(entry) for entry in picked]


class _Ring:
    """One VM's last requests: parallel sequences, oldest at `next` once full."""

    __slots__ = ("next", "requests", "seqs", "times", "vm")

    def __init__(self, vm: str) -> None:
        self.vm = vm
        self.next = 0
        self.seqs = array("q")
        self.times = array("d")
        self.requests: list[_Request] = []

    def _order(self) -> Iterable[int]:
        """Slot indexes, oldest first."""
        return itertools.chain(range(self.next, len(self.requests)), range(self.next))

    def __iter__(self) -> Iterator[Entry]:
        """The entries, oldest first."""
        for i in self._order():
            yield (self.seqs[i], self.times[i], self.vm, *self.requests[i])

    def _newest_first(self) -> Iterable[int]:
        """Slot indexes, newest first (the newest is just before `next`)."""
        count = len(self.requests)
        return itertools.chain(range(self.next - 1, -1, -1), range(count - 1, self.next - 1, -1))

    def newest_times(self) -> Iterator[float]:
        """The entries' times, newest first."""
        for i in self._newest_first():
            yield self.times[i]

    def after(self, seq: int) -> list[Entry]:
        """The entries after sequence number `seq`, oldest first, found from the newest
        end: a stream that follows the journal reads what is new, not every ring in full."""
        newer = []
        for i in self._newest_first():
            if self.seqs[i] <= seq:
                break
            newer.append((self.seqs[i], self.times[i], self.vm, *self.requests[i]))
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

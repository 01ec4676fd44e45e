"""Failed admin logins, counted per source address: past the limit within a minute, that
source is refused (429 with Retry-After) until its oldest failure is a minute old.

Every other source, and every request that needs no token, goes on as before. The table
is bounded: at most `max_sources` addresses are remembered; when it is full, sources whose
failures have all expired go first, then the one that failed least recently. An attacker
who cycles through more addresses than that gets at most `limit` guesses per address per
minute, as the table forgets them.

A loopback peer or the Unix socket (`local`) is this machine: the limit still refuses its
wrong tokens, but a right token always works there, so ten typos cannot lock an operator
out of their own server (docs/reliability.md).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

WINDOW = 60.0
UNIX = "unix"  # the source of a request over the Unix socket (it has no peer address)


def local(source: str) -> bool:
    """Whether `source` is this machine: the Unix socket or a loopback address (an
    IPv4-mapped one too)."""
    if source == UNIX:
        return True
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class LoginGuard:
    def __init__(
        self,
        limit: int = 10,
        *,
        window: float = WINDOW,
        max_sources: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_sources = max_sources
        self.clock = clock
        # source -> times of its recent failures (at most `limit`), least recent first.
        self.failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, source: str) -> int | None:
        """Seconds until `source` may try again, or None when it may try now."""
        if self.limit <= 0:
            return None
        recent = self._recent(source)
        if recent is None or len(recent) < self.limit:
            return None
        return max(1, math.ceil(recent[0] + self.window - self.clock()))

    def failed(self, source: str) -> None:
        """Note one refused token from `source`."""
        if self.limit <= 0:
            return
        recent = self._recent(source)
        if recent is None:
            self._make_room()
            recent = self.failures[source] = deque(maxlen=self.limit)
        recent.append(self.clock())
        self.failures.move_to_end(source)

    def _recent(self, source: str) -> deque[float] | None:
        recent = self.failures.get(source)
        if recent is None:
            return None
        horizon = self.clock() - self.window
        while recent and recent[0] <= horizon:
            recent.popleft()
        if not recent:
            del self.failures[source]
            return None
        return recent

    def _make_room(self) -> None:
        if len(self.failures) < self.max_sources:
            return
        horizon = self.clock() - self.window
        for source in [s for s, times in self.failures.items() if times[-1] <= horizon]:
            del self.failures[source]
        while len(self.failures) >= self.max_sources:
            self.failures.popitem(last=False)

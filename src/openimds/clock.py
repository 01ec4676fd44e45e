"""The server's clock: wall time plus an offset that `openimds.testing` can advance.

The runtime owns one; what reads it is what a virtual clock drives: scheduled events
(posting, NotBefore, starting, completion), fault rules' windows, and the `now` the
metadata listener hands the core (so a token's expires_on and the listener's cache of
time-bound answers follow it). The Date header, access-log stamps, rate limits and idle
timeouts stay on real time: they are about the wire, not the emulated machine.
"""

from __future__ import annotations

import time


class Clock:
    __slots__ = ("offset",)

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock does not go back")
        self.offset += seconds

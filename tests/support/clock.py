"""A clock that stands still until a test moves it, for code that takes `clock=`."""

from __future__ import annotations


class FakeClock:
    """Called for the time (epoch seconds); `now` is set or advanced by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

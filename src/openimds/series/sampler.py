"""The last 900 seconds of request figures: a ring of points, one added by the runtime's
once-a-second job from a reading of the request metrics (series/points.py).

One point per sample: the job runs once a second, so a point is about one second; a
loop held up for longer puts the wait's requests in one point. `end` is the server's
clock (runtime.Clock) at the newest sample, each earlier point one step before it, so
a test's virtual clock moves `end` without inventing empty seconds.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from openimds.runtime import Clock
from openimds.series.points import Point, chart, difference, read
from openimds.web.metrics import RequestMetrics

SIZE = 900  # points kept: 15 minutes


class Sampler:
    def __init__(self, metrics: RequestMetrics, clock: Clock, size: int = SIZE) -> None:
        self.metrics = metrics
        self.clock = clock
        self.points: deque[Point] = deque(maxlen=size)
        self.last = read(metrics)
        self.end = int(clock.now())

    def sample(self) -> None:
        """The runtime job: what the metrics counted since the last sample."""
        reading = read(self.metrics)
        self.points.append(difference(self.last, reading, self.metrics.latency.bounds))
        self.last = reading
        self.end = int(self.clock.now())

    def chart(self, seconds: int) -> dict[str, Any]:
        """The last `seconds` points (fewer while the server is younger)."""
        kept = list(self.points)[-seconds:]
        return chart(kept, self.end)

"""Request figures for charts (features.ALL): a job that samples the request metrics
once a second into a ring, and GET /metrics/series.

Why a feature package: the counters belong to the listener (web/metrics.py, an adapter
kept to plain increments, read by Prometheus on scrape) and the admin app's own routes
(web/admin_app.py) have no clock and no tick. Sampling needs both, and a once-a-second
job, the runtime's clock and an admin route are what a Plug carries; the differencing
and percentiles stay pure beside it (series/points.py).
"""

from __future__ import annotations

from openimds.runtime import Plug, Runtime
from openimds.series.admin import SeriesAdmin
from openimds.series.sampler import Sampler


def install(runtime: Runtime) -> Plug:
    sampler = Sampler(runtime.metrics, runtime.clock)
    return Plug(admin=[SeriesAdmin(sampler)], jobs=[sampler.sample])

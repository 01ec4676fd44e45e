"""The request journal, plugged into a server (features.ALL): its admin routes and the
count of open event streams in /metrics."""

from __future__ import annotations

from openimds.journal.admin import JournalAdmin, StreamsCollector
from openimds.runtime import Plug, Runtime


def install(runtime: Runtime) -> Plug:
    admin = JournalAdmin(runtime.request_ring, runtime.inventory, stopping=lambda: runtime.stopping)
    return Plug(admin=[admin], collectors=[StreamsCollector(admin)])

"""The request journal, plugged into a server (features.ALL): its admin routes."""

from __future__ import annotations

from openimds.journal.admin import JournalAdmin
from openimds.runtime import Plug, Runtime


def install(runtime: Runtime) -> Plug:
    return Plug(admin=[JournalAdmin(runtime.journal, runtime.fleet)])

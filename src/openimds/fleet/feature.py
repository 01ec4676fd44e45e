"""The inventory, plugged into a server: its admin routes (the Fleet itself is part of
every runtime, since each request is resolved to a VM before any feature runs)."""

from __future__ import annotations

from openimds.fleet.admin import FleetAdmin
from openimds.runtime import Plug, Runtime


def install(runtime: Runtime) -> Plug:
    return Plug(admin=[FleetAdmin(runtime.fleet)])

"""The fleet's admin routes, plugged into a server. The inventory they change (inventory/)
belongs to every runtime, since each request is resolved to a VM first."""

from __future__ import annotations

from openimds.fleet.admin import FleetAdmin
from openimds.fleet.preview import MetadataPreview
from openimds.runtime import Plug, Runtime


def install(runtime: Runtime) -> Plug:
    admin = FleetAdmin(runtime.stored, runtime.request_ring, MetadataPreview.of(runtime))
    return Plug(admin=[admin])

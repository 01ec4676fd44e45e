"""The inventory, plugged into a server: the VMs from the store and the configuration,
their admin routes, and (with a shared store) other nodes' changes followed. The Fleet
itself belongs to every runtime, since each request is resolved to a VM first."""

from __future__ import annotations

from openimds.config import ConfigError
from openimds.config.loading import demo_vm
from openimds.config.vm_model import VmSpec
from openimds.fleet import records
from openimds.fleet.admin import FleetAdmin
from openimds.fleet.inventory import InventoryError
from openimds.fleet.preview import MetadataPreview
from openimds.fleet.service import Inventory
from openimds.fleet.vm_ids import VmIds
from openimds.runtime import Plug, Runtime


def install(runtime: Runtime) -> Plug:
    runtime.fleet.vm_ids = VmIds(runtime.store)
    inventory = Inventory(runtime.store, runtime.fleet)
    demo = VmSpec.model_validate(demo_vm())
    # Without a VM file the built-in demo VM is served, unless the store holds VMs.
    configured = [] if runtime.config.vms == [demo] else list(runtime.config.vms)
    try:
        inventory.start(configured, fallback=[demo])
    except InventoryError as exc:
        raise ConfigError(f"the VMs of the configuration and the state store: {exc}") from None
    admin = FleetAdmin(inventory, runtime.journal, MetadataPreview.of(runtime))
    return Plug(admin=[admin], follows={records.KIND: inventory.follow})

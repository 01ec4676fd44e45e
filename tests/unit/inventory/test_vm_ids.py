"""A VM whose file gives no compute.name or vmId: the name is its VM name, and its vmId is
generated once and kept in the state store, the same after a restart and on every node
sharing the store; one the file gives is served as given."""

from __future__ import annotations

import itertools
import uuid

from openimds.config.vm_model import VmSpec
from openimds.inventory.live import LiveInventory
from openimds.inventory.stored import StoredInventory
from openimds.inventory.vm_ids import KIND, VmIds
from openimds.store.memory import MemoryStore

GIVEN = "a37d1a9e-1c7d-4b8c-9b1f-6f0c1f5e2d11"


def vm(vm_name: str, address: str, **compute: str) -> VmSpec:
    return VmSpec.model_validate(
        {"name": vm_name, "addresses": [address], "instance": {"compute": compute}}
    )


def node(store: MemoryStore) -> LiveInventory:
    fleet = LiveInventory()
    fleet.vm_ids = VmIds(store)
    return fleet


def test_a_short_vm_file_serves_its_name_and_a_vm_id_kept_in_the_store() -> None:
    store = MemoryStore()
    fleet = node(store)
    StoredInventory(store, fleet).start(
        [vm("web-1", "10.0.0.1"), vm("web-2", "10.0.0.2", vmId=GIVEN)]
    )
    compute = fleet.vms["web-1"].compute
    assert compute["name"] == "web-1"
    assert str(uuid.UUID(str(compute["vmId"]))) == compute["vmId"]
    assert fleet.vms["web-2"].compute["vmId"] == GIVEN  # the file's own
    assert dict(store.list_records(KIND)) == {"web-1": compute["vmId"]}
    # A restart on the same store, and a change to the VM, keep the id.
    again = node(store)
    StoredInventory(store, again).start(
        [vm("web-1", "10.0.0.1"), vm("web-2", "10.0.0.2", vmId=GIVEN)]
    )
    assert again.vms["web-1"].compute["vmId"] == compute["vmId"]
    StoredInventory(store, again).upsert([vm("web-1", "10.0.0.1", location="westeurope")])
    assert again.vms["web-1"].compute["vmId"] == compute["vmId"]
    assert again.vms["web-1"].compute["location"] == "westeurope"


def test_a_name_the_file_gives_is_served_as_given() -> None:
    store = MemoryStore()
    fleet = node(store)
    StoredInventory(store, fleet).start([vm("web-1", "10.0.0.1", name="host-a")])
    assert fleet.vms["web-1"].compute["name"] == "host-a"


def test_two_nodes_generating_at_once_agree_on_the_first_writers_id() -> None:
    store = MemoryStore()
    counter = itertools.count()
    first, second = VmIds(store), VmIds(store)
    first.new_guid = second.new_guid = lambda: str(uuid.UUID(int=next(counter)))
    first.load()
    second.load()  # both read an empty store before either writes
    won = second.ids_for(["web-1"])["web-1"]
    assert first.ids_for(["web-1"])["web-1"] == won
    assert dict(store.list_records(KIND)) == {"web-1": won}


def test_an_unchanged_vm_keeps_its_revision_and_its_cached_answers() -> None:
    store = MemoryStore()
    fleet = node(store)
    inventory = StoredInventory(store, fleet)
    inventory.start([vm("web-1", "10.0.0.1"), vm("web-2", "10.0.0.2")])
    revision = fleet.vms["web-2"].revision
    inventory.upsert([vm("web-1", "10.0.0.1", location="x")])
    assert fleet.vms["web-2"].revision == revision

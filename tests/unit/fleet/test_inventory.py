"""The live inventory: per-VM revisions, servability, and the store behind it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from openimds.config.vm_model import VmSpec
from openimds.fleet import records
from openimds.fleet.inventory import Fleet, InventoryError
from openimds.fleet.service import Inventory
from openimds.store import Delete, Expect, Put, Store, StoreError
from openimds.store.memory import MemoryStore


def vm(name: str, *addresses: str, **compute: Any) -> VmSpec:
    return VmSpec.model_validate(
        {"name": name, "addresses": list(addresses), "instance": {"compute": compute}}
    )


def test_a_change_bumps_only_that_vms_revision() -> None:
    fleet = Fleet([vm("a", "10.0.0.1"), vm("b", "10.0.0.2")])
    a, b = fleet.vms["a"].revision, fleet.vms["b"].revision
    assert fleet.put([vm("a", "10.0.0.1", location="westeurope")]) == ["a"]
    assert fleet.vms["a"].revision > max(a, b)
    assert fleet.vms["b"].revision == b
    assert fleet.put([vm("a", "10.0.0.1", location="westeurope")]) == []  # same data
    assert fleet.vms["a"].compute["location"] == "westeurope"


def test_revisions_are_never_reused_after_a_remove() -> None:
    fleet = Fleet([vm("a", "10.0.0.1"), vm("b", "10.0.0.2")])
    before = fleet.vms["a"].revision
    fleet.remove(["a"])
    fleet.put([vm("a", "10.0.0.1")])
    assert fleet.vms["a"].revision != before


def test_callers_follow_the_change() -> None:
    fleet = Fleet([vm("a", "10.0.0.1"), vm("b", "10.0.0.2")])
    fleet.put([vm("c", "10.0.0.3")])
    found = fleet.for_peer("10.0.0.3")
    assert found is not None and found.name == "c"
    fleet.remove(["c"])
    assert fleet.for_peer("10.0.0.3") is None


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([vm("a"), vm("b", "10.0.0.2")], "every VM must list the `addresses`"),
        ([vm("a", "10.0.0.1"), vm("b", "10.0.0.1")], "listed by both a and b"),
    ],
)
def test_an_unservable_inventory_is_refused(specs: list[VmSpec], message: str) -> None:
    fleet = Fleet([vm("only")])
    with pytest.raises(InventoryError, match=message):
        fleet.replace(specs)
    assert list(fleet.specs) == ["only"]  # unchanged


def _inventory(store: Store | None = None) -> Inventory:
    return Inventory(store or MemoryStore(), Fleet())


def test_configured_vms_win_and_are_written_to_the_store() -> None:
    store = MemoryStore()
    store.put_record(records.KIND, "a", records.encode(vm("a", "10.0.0.1", location="old")))
    store.put_record(records.KIND, "b", records.encode(vm("b", "10.0.0.2")))
    inventory = _inventory(store)
    inventory.start([vm("a", "10.0.0.1", location="new")])
    assert list(inventory.fleet.specs) == ["a", "b"]
    assert inventory.fleet.specs["a"].instance.compute.location == "new"
    assert records.decode("a", store.get_record(records.KIND, "a") or "") == vm(
        "a", "10.0.0.1", location="new"
    )


def test_the_fallback_serves_only_when_nothing_else_does() -> None:
    demo = vm("demo")
    empty = _inventory()
    empty.start([], fallback=[demo])
    assert list(empty.fleet.specs) == ["demo"]
    assert empty.store.list_records(records.KIND) == []  # the demo VM is not stored
    store = MemoryStore()
    store.put_record(records.KIND, "real", records.encode(vm("real")))
    stored = _inventory(store)
    stored.start([], fallback=[demo])
    assert list(stored.fleet.specs) == ["real"]


class FailingStore(MemoryStore):
    def write_batch(self, ops: Sequence[Put | Delete], expect: Sequence[Expect] = ()) -> None:
        raise StoreError("disk full")


def test_a_failed_write_changes_nothing_served() -> None:
    inventory = _inventory(FailingStore())
    inventory.fleet.replace([vm("a", "10.0.0.1")])
    with pytest.raises(StoreError):
        inventory.upsert([vm("b", "10.0.0.2")])
    with pytest.raises(StoreError):
        inventory.remove(["a"])
    assert list(inventory.fleet.specs) == ["a"]


def test_following_another_nodes_changes() -> None:
    store = MemoryStore()
    inventory = _inventory(store)
    inventory.start([vm("a", "10.0.0.1")])
    store.put_record(records.KIND, "b", records.encode(vm("b", "10.0.0.2")))
    inventory.follow("b")
    assert sorted(inventory.fleet.specs) == ["a", "b"]
    store.delete_record(records.KIND, "a")
    inventory.follow("a")
    assert sorted(inventory.fleet.specs) == ["b"]
    store.put_record(records.KIND, "c", records.encode(vm("c", "10.0.0.3")))
    inventory.follow("*")
    assert sorted(inventory.fleet.specs) == ["b", "c"]


def test_records_round_trip_and_corruption_names_the_record() -> None:
    spec = vm("a", "10.0.0.1", location="westeurope", vmSize="Standard_B2s")
    assert records.decode("a", records.encode(spec)) == spec
    with pytest.raises(StoreError, match="corrupt vm record a"):
        records.decode("a", "{bad")


def test_the_first_real_vm_replaces_the_demo_vm() -> None:
    inventory = _inventory()
    inventory.start([], fallback=[vm("demo")])  # no addresses: a fleet of one
    assert inventory.upsert([vm("a", "10.0.0.1"), vm("b", "10.0.0.2")]) == ["a", "b"]
    assert sorted(inventory.fleet.texts) == ["a", "b"]


def test_editing_the_demo_vm_keeps_it() -> None:
    inventory = _inventory()
    inventory.start([], fallback=[vm("demo")])
    inventory.upsert([vm("demo", location="westeurope")])
    assert list(inventory.fleet.texts) == ["demo"]
    assert inventory.store.get_record(records.KIND, "demo") is not None


def test_equal_identity_blocks_share_one_validated_model() -> None:
    first = records.identities_of("a", {"systemAssigned": {}})
    assert records.identities_of("b", {"systemAssigned": {}}) is first
    assert first.systemAssigned is not None
    other = records.identities_of("c", {"systemAssigned": {}, "tenantId": ""})
    assert other == first and other is not first  # equal, but given differently
    with pytest.raises(StoreError, match="corrupt vm record d: systemAssigned"):
        records.identities_of("d", {"systemAssigned": {"clientId": "not-a-guid"}})

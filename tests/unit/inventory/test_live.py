"""The live stored: per-VM revisions, servability, and the store behind it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from openimds.config.vm_model import VmSpec
from openimds.inventory import records
from openimds.inventory.live import InventoryError, LiveInventory
from openimds.inventory.stored import StoredInventory
from openimds.store import Delete, Expect, Put, Store, StoreError
from openimds.store.memory import MemoryStore


def vm(name: str, *addresses: str, **compute: Any) -> VmSpec:
    return VmSpec.model_validate(
        {"name": name, "addresses": list(addresses), "instance": {"compute": compute}}
    )


def test_a_change_bumps_only_that_vms_revision() -> None:
    inventory = LiveInventory([vm("a", "10.0.0.1"), vm("b", "10.0.0.2")])
    a, b = inventory.vms["a"].revision, inventory.vms["b"].revision
    assert inventory.put([vm("a", "10.0.0.1", location="westeurope")]) == ["a"]
    assert inventory.vms["a"].revision > max(a, b)
    assert inventory.vms["b"].revision == b
    assert inventory.put([vm("a", "10.0.0.1", location="westeurope")]) == []  # same data
    assert inventory.vms["a"].compute["location"] == "westeurope"


def test_revisions_are_never_reused_after_a_remove() -> None:
    inventory = LiveInventory([vm("a", "10.0.0.1"), vm("b", "10.0.0.2")])
    before = inventory.vms["a"].revision
    inventory.remove(["a"])
    inventory.put([vm("a", "10.0.0.1")])
    assert inventory.vms["a"].revision != before


def test_callers_follow_the_change() -> None:
    inventory = LiveInventory([vm("a", "10.0.0.1"), vm("b", "10.0.0.2")])
    inventory.put([vm("c", "10.0.0.3")])
    found = inventory.for_peer("10.0.0.3")
    assert found is not None and found.name == "c"
    inventory.remove(["c"])
    assert inventory.for_peer("10.0.0.3") is None


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([vm("a"), vm("b", "10.0.0.2")], "every VM must list the `addresses`"),
        ([vm("a", "10.0.0.1"), vm("b", "10.0.0.1")], "listed by both a and b"),
    ],
)
def test_an_unservable_inventory_is_refused(specs: list[VmSpec], message: str) -> None:
    inventory = LiveInventory([vm("only")])
    with pytest.raises(InventoryError, match=message):
        inventory.replace(specs)
    assert list(inventory.specs) == ["only"]  # unchanged


def _stored(store: Store | None = None) -> StoredInventory:
    return StoredInventory(store or MemoryStore(), LiveInventory())


def test_configured_vms_win_and_are_written_to_the_store() -> None:
    store = MemoryStore()
    store.put_record(records.KIND, "a", records.encode(vm("a", "10.0.0.1", location="old")))
    store.put_record(records.KIND, "b", records.encode(vm("b", "10.0.0.2")))
    stored = _stored(store)
    stored.start([vm("a", "10.0.0.1", location="new")])
    assert list(stored.live.specs) == ["a", "b"]
    assert stored.live.specs["a"].instance.compute.location == "new"
    assert records.decode("a", store.get_record(records.KIND, "a") or "") == vm(
        "a", "10.0.0.1", location="new"
    )


def test_the_fallback_serves_only_when_nothing_else_does() -> None:
    demo = vm("demo")
    empty = _stored()
    empty.start([], fallback=[demo])
    assert list(empty.live.specs) == ["demo"]
    assert empty.store.list_records(records.KIND) == []  # the demo VM is not stored
    store = MemoryStore()
    store.put_record(records.KIND, "real", records.encode(vm("real")))
    stored = _stored(store)
    stored.start([], fallback=[demo])
    assert list(stored.live.specs) == ["real"]


class FailingStore(MemoryStore):
    def write_batch(self, ops: Sequence[Put | Delete], expect: Sequence[Expect] = ()) -> None:
        raise StoreError("disk full")


def test_a_failed_write_changes_nothing_served() -> None:
    stored = _stored(FailingStore())
    stored.live.replace([vm("a", "10.0.0.1")])
    with pytest.raises(StoreError):
        stored.upsert([vm("b", "10.0.0.2")])
    with pytest.raises(StoreError):
        stored.remove(["a"])
    assert list(stored.live.specs) == ["a"]


def test_following_another_nodes_changes() -> None:
    store = MemoryStore()
    stored = _stored(store)
    stored.start([vm("a", "10.0.0.1")])
    store.put_record(records.KIND, "b", records.encode(vm("b", "10.0.0.2")))
    stored.follow("b")
    assert sorted(stored.live.specs) == ["a", "b"]
    store.delete_record(records.KIND, "a")
    stored.follow("a")
    assert sorted(stored.live.specs) == ["b"]
    store.put_record(records.KIND, "c", records.encode(vm("c", "10.0.0.3")))
    stored.follow("*")
    assert sorted(stored.live.specs) == ["b", "c"]


def test_records_round_trip_and_corruption_names_the_record() -> None:
    spec = vm("a", "10.0.0.1", location="westeurope", vmSize="Standard_B2s")
    assert records.decode("a", records.encode(spec)) == spec
    with pytest.raises(StoreError, match="corrupt vm record a"):
        records.decode("a", "{bad")


def test_the_first_real_vm_replaces_the_demo_vm() -> None:
    stored = _stored()
    stored.start([], fallback=[vm("demo")])  # no addresses: a fleet of one
    assert stored.upsert([vm("a", "10.0.0.1"), vm("b", "10.0.0.2")]) == ["a", "b"]
    assert sorted(stored.live.texts) == ["a", "b"]


def test_editing_the_demo_vm_keeps_it() -> None:
    stored = _stored()
    stored.start([], fallback=[vm("demo")])
    stored.upsert([vm("demo", location="westeurope")])
    assert list(stored.live.texts) == ["demo"]
    assert stored.store.get_record(records.KIND, "demo") is not None


def test_equal_identity_blocks_share_one_validated_model() -> None:
    first = records.identities_of("a", {"systemAssigned": {}})
    assert records.identities_of("b", {"systemAssigned": {}}) is first
    assert first.systemAssigned is not None
    other = records.identities_of("c", {"systemAssigned": {}, "tenantId": ""})
    assert other == first and other is not first  # equal, but given differently
    with pytest.raises(StoreError, match="corrupt vm record d: systemAssigned"):
        records.identities_of("d", {"systemAssigned": {"clientId": "not-a-guid"}})

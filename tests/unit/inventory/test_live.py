"""The live stored: per-VM revisions, servability, and the store behind it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from openimds.config.vm_model import VmSpec
from openimds.inventory import records
from openimds.inventory.live import InventoryError, LiveInventory
from openimds.inventory.stored import (
    ADDRESSES,
    VM_IDS,
    PreconditionFailed,
    Refused,
    StoredInventory,
)
from openimds.store import Expect, Op, Store, StoreError
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
    def write_batch(self, ops: Sequence[Op], expect: Sequence[Expect] = ()) -> None:
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
    stored.follow({"b": records.encode(vm("b", "10.0.0.2"))})  # the value at the head
    assert sorted(stored.live.specs) == ["a", "b"]
    stored.follow({"a": None})
    assert sorted(stored.live.specs) == ["b"]
    store.delete_record(records.KIND, "a")
    store.put_record(records.KIND, "c", records.encode(vm("c", "10.0.0.3")))
    stored.follow(None)  # the log no longer reaches back: everything, as stored now
    assert sorted(stored.live.specs) == ["b", "c"]


def test_following_applies_a_swap_of_addresses_in_one_change() -> None:
    stored = _stored()
    stored.start([vm("a", "10.0.0.1"), vm("b", "10.0.0.2")])
    swapped = {
        "a": records.encode(vm("a", "10.0.0.2")),
        "b": records.encode(vm("b", "10.0.0.1")),
    }
    stored.follow(swapped)
    assert stored.live.snapshot("a").addresses == ("10.0.0.2",)
    assert stored.live.snapshot("b").addresses == ("10.0.0.1",)


def test_the_store_decides_an_address_held_by_another_vm() -> None:
    # Another node wrote b with 10.0.0.1 after this node's copy was read: the copy does
    # not know, the store does, and refuses; nothing is written.
    store = MemoryStore()
    stored = _stored(store)
    stored.start([vm("a", "10.0.0.1")])
    other = _stored(store)
    other.start([])
    other.remove(["a"])
    other.upsert([vm("b", "10.0.0.1")])
    with pytest.raises(Refused, match=r"address 10\.0\.0\.1 is held by VM b; VM c was not"):
        stored.upsert([vm("c", "10.0.0.1")])
    assert store.get_record(records.KIND, "c") is None
    assert store.holders(ADDRESSES) == {"10.0.0.1": "b"}


def test_a_vm_id_is_claimed_in_any_case() -> None:
    store = MemoryStore()
    stored = _stored(store)
    guid = "0a1b2c3d-0000-4000-8000-00000000abcd"
    stored.start([vm("a", "10.0.0.1", vmId=guid)])
    with pytest.raises(Refused, match=f"vmId {guid} is held by VM a"):
        stored.upsert([vm("b", "10.0.0.2", vmId=guid.upper())])
    stored.remove(["a"])
    assert stored.upsert([vm("b", "10.0.0.2", vmId=guid.upper())]) == ["b"]
    assert store.holders(VM_IDS) == {guid: "b"}


def test_conditions_are_decided_by_the_store() -> None:
    store = MemoryStore()
    stored = _stored(store)
    stored.start([vm("a", "10.0.0.1")])
    store.put_record(records.KIND, "b", records.encode(vm("b", "10.0.0.2")))  # unseen
    with pytest.raises(PreconditionFailed, match="VM b exists already"):
        stored.upsert([vm("b", "10.0.0.3")], exists=False)
    with pytest.raises(PreconditionFailed, match="no VM named c"):
        stored.upsert([vm("c", "10.0.0.3")], exists=True)
    assert store.get_record(records.KIND, "c") is None
    assert stored.upsert([vm("c", "10.0.0.3")], exists=False) == ["c"]


def test_start_backfills_claims_and_names_both_vms_of_a_broken_store() -> None:
    store = MemoryStore()
    store.put_record(records.KIND, "a", records.encode(vm("a", "10.0.0.1")))
    _stored(store).start([])
    assert store.holders(ADDRESSES) == {"10.0.0.1": "a"}
    store.put_record(records.KIND, "b", records.encode(vm("b", "10.0.0.1")))  # old data
    with pytest.raises(InventoryError, match="listed by both a and b; fix: give one"):
        _stored(store).start([])


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


def test_backfill_claims_only_for_vms_that_hold_none() -> None:
    store = MemoryStore()
    _stored(store).start([vm("a", "10.0.0.1")])  # written with its claims
    store.put_record(records.KIND, "b", records.encode(vm("b", "10.0.0.2")))  # old data
    _stored(store).start([])
    assert store.holders(ADDRESSES) == {"10.0.0.1": "a", "10.0.0.2": "b"}

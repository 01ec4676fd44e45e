"""The identity directory: generated ids stable for one store, identities following the
VM's revision."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from openimds.core.identity.identity_api import VmIdentities
from openimds.core.vm import VmSnapshot
from openimds.identity import directory as directory_module
from openimds.identity.directory import KIND, StoreDirectory, default_tenant, random_guids
from openimds.inventory.live import LiveInventory
from openimds.store import Expect, Op
from openimds.store.memory import MemoryStore
from tests.support.config import load_text


def directory_for(tmp_path: Path, text: str, store: MemoryStore) -> StoreDirectory:
    config = load_text(tmp_path, text)
    inventory = LiveInventory(config.vms)
    directory = StoreDirectory(store, inventory, default_tenant(store, None))
    directory.load_ids()  # as the identity feature does at start
    return directory


def test_generated_ids_are_stable_for_one_store(tmp_path: Path) -> None:
    text = "name: vm\nidentities: {systemAssigned: {}, userAssigned: [{}, {}]}\n"
    store = MemoryStore()
    first = directory_for(tmp_path, text, store).assign_all()["vm"]
    again = directory_for(tmp_path, text, store).assign_all()["vm"]
    other = directory_for(tmp_path, text, MemoryStore()).assign_all()["vm"]
    assert first is not None and again is not None and other is not None
    assert first == again
    assert first.system is not None and other.system is not None
    assert first.system.client_id != other.system.client_id
    ids = [first.system.client_id, first.system.object_id]
    ids += [i for u in first.user for i in (u.client_id, u.object_id)]
    assert len(set(ids)) == 6
    assert first.user[1].resource_id.endswith("/userAssignedIdentities/vm-identity-2")


def test_directory_follows_the_vm_revision(tmp_path: Path) -> None:
    store = MemoryStore()
    directory = directory_for(tmp_path, "name: vm\n", store)
    vm = directory.inventory.vms["vm"]
    assert directory.assign_ids(vm) is None
    config = load_text(tmp_path, "name: vm\nidentities: {systemAssigned: true}\n")
    directory.inventory.replace(config.vms)
    newer: VmSnapshot = directory.inventory.vms["vm"]
    assert newer.revision != vm.revision
    resolved = directory.assign_ids(newer)
    assert resolved is not None and resolved.system is not None


def test_generated_guids_are_version_4_and_distinct() -> None:
    new_guid = random_guids(batch=4)  # several batches in 1,000 ids
    made = [new_guid() for _ in range(1000)]
    assert len(set(made)) == 1000
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lower case, canonical form
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


class CountingStore(MemoryStore):
    """A memory store that counts the batches written to it (refused ones too)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def write_batch(self, ops: Sequence[Op], expect: Sequence[Expect] = ()) -> None:
        self.batches += 1
        super().write_batch(ops, expect)


def _fleet_text(count: int) -> str:
    vms = [
        f"  - {{name: vm-{n}, addresses: [10.0.0.{n + 1}], identities: {{systemAssigned: true}}}}"
        for n in range(count)
    ]
    return "vms:\n" + "\n".join(vms) + "\n"


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(directory_module, "SLICE", 2)


def _ids(found: VmIdentities | None) -> tuple[str, str]:
    assert found is not None and found.system is not None
    return found.system.client_id, found.system.object_id


def test_the_warm_up_writes_every_missing_id_in_one_batch(
    tmp_path: Path, small_slices: None
) -> None:
    store = CountingStore()
    directory = directory_for(tmp_path, _fleet_text(5), store)
    steps = sum(1 for _ in directory.warm_up())
    assert steps == 3  # 5 VMs, 2 a step
    assert store.batches == 1 and len(store.list_records(KIND)) == 10
    resolved = directory.assign_all()
    assert store.batches == 1  # resolved from memory, nothing written again
    stored = dict(store.list_records(KIND))
    assert _ids(resolved["vm-3"]) == (
        stored["vm-3/system/clientId"],
        stored["vm-3/system/objectId"],
    )


def test_a_request_during_the_warm_up_keeps_the_ids_it_wrote(
    tmp_path: Path, small_slices: None
) -> None:
    store = CountingStore()
    directory = directory_for(tmp_path, _fleet_text(5), store)
    steps = directory.warm_up()
    next(steps)  # vm-0 and vm-1 resolved, their ids not written yet
    early = directory.assign_ids(directory.inventory.vms["vm-1"])  # a token request for vm-1
    assert _ids(early) == (
        store.get_record(KIND, "vm-1/system/clientId"),
        store.get_record(KIND, "vm-1/system/objectId"),
    )
    for _ in steps:
        pass
    assert _ids(directory.assign_ids(directory.inventory.vms["vm-1"])) == _ids(early)
    assert len(store.list_records(KIND)) == 10


def test_asking_for_every_vm_finishes_the_warm_up_first(tmp_path: Path, small_slices: None) -> None:
    store = CountingStore()
    directory = directory_for(tmp_path, _fleet_text(5), store)
    steps = directory.warm_up()
    next(steps)
    assert len(directory.assign_all()) == 5  # the discovery document, say, during the warm-up
    assert store.batches == 1  # one batch, not two writes per VM
    assert list(steps) == []  # nothing left for the server's task


def test_ids_another_node_wrote_first_are_taken(tmp_path: Path, small_slices: None) -> None:
    store = CountingStore()
    directory = directory_for(tmp_path, _fleet_text(3), store)
    other = directory_for(tmp_path, _fleet_text(3), store)  # a node sharing the store
    steps = directory.warm_up()
    next(steps), next(steps)  # every VM resolved with ids of its own, none written yet
    for _ in other.warm_up():  # the other node writes all of its ids first
        pass
    assert list(steps) == [None, None]  # conflict: reloaded and resolved again
    assert store.batches == 2  # the other node's, and this one's refused
    theirs, mine = other.assign_all(), directory.assign_all()
    assert [_ids(mine[name]) for name in mine] == [_ids(theirs[name]) for name in mine]
    assert len(store.list_records(KIND)) == 6

"""The identity directory: generated ids stable for one store, identities following the
VM's revision."""

from __future__ import annotations

import uuid
from pathlib import Path

from openimds.core.inventory import VmSnapshot
from openimds.fleet.inventory import Fleet
from openimds.identity.directory import StoreDirectory, default_tenant, random_guids
from openimds.store.memory import MemoryStore
from tests.support.config import load_text


def directory_for(tmp_path: Path, text: str, store: MemoryStore) -> StoreDirectory:
    config = load_text(tmp_path, text)
    fleet = Fleet(config.vms)
    return StoreDirectory(store, fleet, default_tenant(store, None))


def test_generated_ids_are_stable_for_one_store(tmp_path: Path) -> None:
    text = "name: vm\nidentities: {systemAssigned: {}, userAssigned: [{}, {}]}\n"
    store = MemoryStore()
    first = directory_for(tmp_path, text, store).all()["vm"]
    again = directory_for(tmp_path, text, store).all()["vm"]
    other = directory_for(tmp_path, text, MemoryStore()).all()["vm"]
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
    vm = directory.fleet.vms["vm"]
    assert directory.identities(vm) is None
    config = load_text(tmp_path, "name: vm\nidentities: {systemAssigned: true}\n")
    directory.fleet.replace(config.vms)
    newer: VmSnapshot = directory.fleet.vms["vm"]
    assert newer.revision != vm.revision
    resolved = directory.identities(newer)
    assert resolved is not None and resolved.system is not None


def test_generated_guids_are_version_4_and_distinct() -> None:
    new_guid = random_guids(batch=4)  # several batches in 1,000 ids
    made = [new_guid() for _ in range(1000)]
    assert len(set(made)) == 1000
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lower case, canonical form
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122

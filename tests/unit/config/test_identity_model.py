"""The `identities` block of a VM file, the `identity` settings, and generated ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from openimds.config import Config, ConfigError, load_config
from openimds.core.inventory import VmSnapshot
from openimds.fleet.inventory import Fleet
from openimds.identity.directory import StoreDirectory, default_tenant
from openimds.store.memory import MemoryStore

TENANT = "3f2d8c4e-6b1a-4e7f-9c3d-2a5b8e1f0c47"


def config_with(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    path = tmp_path / "vm.yaml"
    path.write_text(text)
    return load_config(str(path), env=env or {})


def test_demo_vm_has_a_system_and_a_user_assigned_identity() -> None:
    vm = load_config(None, env={}).vms[0]
    assert vm.identities is not None
    assert vm.identities.systemAssigned is not None
    assert len(vm.identities.userAssigned) == 1


def test_identity_settings_defaults_and_environment() -> None:
    settings = load_config(None, env={}).identity
    assert settings.token_lifetime == 86400
    assert settings.issuer == "https://sts.windows.net/{tenant}/"
    assert settings.rate_limit == 20.0
    env = {"OPENIMDS_IDENTITY_RATE_LIMIT": "0", "OPENIMDS_IDENTITY_TOKEN_LIFETIME": "3600"}
    changed = load_config(None, env=env).identity
    assert (changed.rate_limit, changed.token_lifetime) == (0.0, 3600)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENIMDS_IDENTITY_ISSUER": "sts.windows.net"}, r"an http\(s\) URL"),
        ({"OPENIMDS_IDENTITY_TOKEN_LIFETIME": "60"}, "greater than or equal to 900"),
    ],
)
def test_bad_identity_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, env=env)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{tenantId: not-a-guid}", "not a GUID"),
        ("{systemAssigned: {clientId: 123}}", "expected a string"),
        ("{systemAssigned: {objectId: 1234-5678}}", "not a GUID"),
        ("{userAssigned: [{resourceId: /resourceGroups/x}]}", "ARM resource id"),
        ("{userAssigned: [{clientid: x}]}", "unknown field 'clientid'"),
        (
            "{userAssigned: [{clientId: 5e8f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a82}, "
            "{clientId: 5E8F1A2B-3C4D-4E5F-8A9B-0C1D2E3F4A82}]}",
            "must be unique",
        ),
    ],
)
def test_bad_identities_block(tmp_path: Path, block: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_with(tmp_path, f"name: vm\nidentities: {block}\n")


def test_system_assigned_shorthand_and_lower_cased_ids(tmp_path: Path) -> None:
    config = config_with(
        tmp_path, f"name: vm\nidentities: {{systemAssigned: true, tenantId: {TENANT.upper()}}}\n"
    )
    identities = config.vms[0].identities
    assert identities.systemAssigned is not None
    assert identities.tenantId == TENANT


def directory_for(tmp_path: Path, text: str, store: MemoryStore) -> StoreDirectory:
    config = config_with(tmp_path, text)
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
    config = config_with(tmp_path, "name: vm\nidentities: {systemAssigned: true}\n")
    directory.fleet.replace(config.vms)
    newer: VmSnapshot = directory.fleet.vms["vm"]
    assert newer.revision != vm.revision
    resolved = directory.identities(newer)
    assert resolved is not None and resolved.system is not None

"""The `identities` block of a VM file: GUIDs, ARM ids, the systemAssigned shorthand."""

from __future__ import annotations

from pathlib import Path

import pytest

from openimds.config import ConfigError, load_config
from tests.support.config import load_text

TENANT = "3f2d8c4e-6b1a-4e7f-9c3d-2a5b8e1f0c47"


def test_demo_vm_has_a_system_and_a_user_assigned_identity() -> None:
    vm = load_config(None, env={}).vms[0]
    assert vm.identities is not None
    assert vm.identities.systemAssigned is not None
    assert len(vm.identities.userAssigned) == 1


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
        load_text(tmp_path, f"name: vm\nidentities: {block}\n")


def test_system_assigned_shorthand_and_lower_cased_ids(tmp_path: Path) -> None:
    config = load_text(
        tmp_path, f"name: vm\nidentities: {{systemAssigned: true, tenantId: {TENANT.upper()}}}\n"
    )
    identities = config.vms[0].identities
    assert identities is not None
    assert identities.systemAssigned is not None
    assert identities.tenantId == TENANT

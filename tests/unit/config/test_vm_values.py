"""Values Azure constrains are refused when a file breaks them: vmId is a GUID, userData
is base64 (Azure stores and serves it encoded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openimds.config import ConfigError, load_config
from openimds.config.vm_model import VmSpec


def compute_of(**fields: str) -> object:
    return VmSpec.model_validate({"instance": {"compute": fields}}).instance.compute


def error_of(tmp_path: Path, compute: str) -> str:
    path = tmp_path / "vm.yaml"
    path.write_text(f"instance:\n  compute:\n    {compute}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env={})
    return str(caught.value)


def test_a_vm_id_that_is_not_a_guid_is_refused(tmp_path: Path) -> None:
    assert error_of(tmp_path, "vmId: NOT-A-GUID") == (
        f"{tmp_path / 'vm.yaml'}: instance.compute.vmId: not a GUID: 'NOT-A-GUID' "
        "(e.g. 7f4a1c52-2b7e-4a8e-9d61-3c0f5b2d9e10)"
    )


@pytest.mark.parametrize(
    "vm_id", ["", "7c6b1d4e-2f3a-4b5c-8d9e-0a1b2c3d4e5f", "7C6B1D4E-2F3A-4B5C-8D9E-0A1B2C3D4E5F"]
)
def test_guid_vm_ids_are_kept_as_given(vm_id: str) -> None:
    assert compute_of(vmId=vm_id).vmId == vm_id  # type: ignore[attr-defined]


@pytest.mark.parametrize("user_data", ["not base64!", "abc", "aGVsbG8=x", "#!/bin/sh\necho hi"])
def test_user_data_that_is_not_base64_is_refused(tmp_path: Path, user_data: str) -> None:
    message = error_of(tmp_path, f"userData: {user_data!r}")
    assert message.startswith(f"{tmp_path / 'vm.yaml'}: instance.compute.userData: ")
    assert "not base64" in message
    assert "Azure stores userData base64-encoded" in message


@pytest.mark.parametrize("user_data", ["", "IyEvYmluL3NoCmVjaG8gaGkK", "aGk=", "aGVsbG8gd29ybGQ="])
def test_base64_user_data_is_accepted(user_data: str) -> None:
    assert compute_of(userData=user_data).userData == user_data  # type: ignore[attr-defined]

"""Fields the VM model derives from others, so every answer about one VM agrees."""

from __future__ import annotations

from typing import Any

import pytest

from openimds.config.vm_model import VmSpec
from openimds.identity.directory import StoreDirectory
from openimds.inventory.live import LiveInventory
from openimds.store.memory import MemoryStore

SUB = "8d10da13-8125-4ba9-a717-bf7490507b3d"
BASE = f"/subscriptions/{SUB}/resourceGroups/rg-1/providers/Microsoft.Compute"


def compute_of(**fields: Any) -> Any:
    return VmSpec.model_validate({"instance": {"compute": fields}}).instance.compute


def test_resource_id_is_derived_from_subscription_group_and_name() -> None:
    compute = compute_of(subscriptionId=SUB, resourceGroupName="rg-1", name="web-0")
    assert compute.resourceId == f"{BASE}/virtualMachines/web-0"


def test_uniform_scale_set_instance_sits_under_its_scale_set() -> None:
    compute = compute_of(
        subscriptionId=SUB, resourceGroupName="rg-1", name="pool_3", vmScaleSetName="pool"
    )
    assert compute.resourceId == f"{BASE}/virtualMachineScaleSets/pool/virtualMachines/3"


def test_flexible_scale_set_vm_is_a_plain_vm() -> None:
    compute = compute_of(
        subscriptionId=SUB,
        resourceGroupName="rg-1",
        name="pool_3",
        vmScaleSetName="pool",
        virtualMachineScaleSet={"id": f"{BASE}/virtualMachineScaleSets/pool"},
    )
    assert compute.resourceId == f"{BASE}/virtualMachines/pool_3"


@pytest.mark.parametrize(
    "fields",
    [
        {"resourceGroupName": "rg-1", "name": "web-0"},
        {"subscriptionId": SUB, "name": "web-0"},
        {"subscriptionId": SUB, "resourceGroupName": "rg-1"},
    ],
)
def test_resource_id_stays_empty_without_every_input(fields: dict[str, str]) -> None:
    assert compute_of(**fields).resourceId == ""


def test_a_given_resource_id_is_kept() -> None:
    given = "/subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/virtualMachines/z"
    compute = compute_of(subscriptionId=SUB, resourceGroupName="rg-1", name="w", resourceId=given)
    assert compute.resourceId == given


def test_token_resource_id_is_the_instance_resource_id() -> None:
    spec = VmSpec.model_validate(
        {
            "identities": {"systemAssigned": True},
            "instance": {
                "compute": {"subscriptionId": SUB, "resourceGroupName": "rg-1", "name": "a"}
            },
        }
    )
    store = MemoryStore()
    directory = StoreDirectory(store, LiveInventory([spec]), "3f2d8c4e-6b1a-4e7f-9c3d-2a5b8e1f0c47")
    identities = directory.all()["a"]
    assert identities is not None and identities.system is not None
    assert identities.system.resource_id == spec.instance.compute.resourceId != ""


def test_scale_set_token_uses_the_same_id_when_inputs_are_missing() -> None:
    # No subscription: nothing is served as resourceId, and the token's id (with
    # placeholders) still has the scale-set form the instance would have.
    spec = VmSpec.model_validate(
        {
            "identities": {"systemAssigned": True},
            "instance": {"compute": {"name": "pool_0", "vmScaleSetName": "pool"}},
        }
    )
    assert spec.instance.compute.resourceId == ""
    directory = StoreDirectory(
        MemoryStore(), LiveInventory([spec]), "3f2d8c4e-6b1a-4e7f-9c3d-2a5b8e1f0c47"
    )
    identities = directory.all()["pool_0"]
    assert identities is not None and identities.system is not None
    assert identities.system.resource_id.endswith("/virtualMachineScaleSets/pool/virtualMachines/0")


def test_image_reference_is_derived_from_compute() -> None:
    compute = compute_of(publisher="Canonical", offer="ubuntu", sku="22_04", version="1.2.3")
    image = compute.storageProfile.imageReference
    assert (image.publisher, image.offer, image.sku, image.version) == (
        "Canonical",
        "ubuntu",
        "22_04",
        "1.2.3",
    )


def test_compute_is_derived_from_image_reference() -> None:
    image = {"publisher": "Canonical", "offer": "ubuntu", "sku": "22_04", "version": "1.2.3"}
    compute = compute_of(storageProfile={"imageReference": image})
    assert (compute.publisher, compute.offer, compute.sku, compute.version) == (
        "Canonical",
        "ubuntu",
        "22_04",
        "1.2.3",
    )


def test_image_fields_given_on_both_sides_are_kept() -> None:
    compute = compute_of(publisher="A", storageProfile={"imageReference": {"publisher": "B"}})
    assert compute.publisher == "A"
    assert compute.storageProfile.imageReference.publisher == "B"


def test_a_custom_image_stays_empty() -> None:
    compute = compute_of(name="custom")
    assert compute.publisher == compute.storageProfile.imageReference.publisher == ""

"""The field-introduction table, checked against the reference and the VM-file model.

REFERENCE below is transcribed by hand from Azure's IMDS documentation: compute, storage,
(storageProfile) and 3.5 (network): every leaf the instance API serves, with the
api-version that introduced it. It is kept apart from core/instance_fields.py on purpose:
the core's table lists only the rows it needs (children inherit their parent's version),
this one lists every leaf, so a wrong or missing row in either shows up here.
"""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import BaseModel

from openimds.config.vm_model import Instance
from openimds.core.instance import fields_version, gate
from openimds.core.instance_fields import FIELD_INTRODUCED, OMIT_WHEN_EMPTY
from openimds.core.versions import GENERAL_SET, GENERAL_VERSIONS

_OS_DISK = [
    "caching",
    "createOption",
    "diffDiskSettings.option",
    "diskSizeGB",
    "encryptionSettings.enabled",
    "image.uri",
    "managedDisk.id",
    "managedDisk.storageAccountType",
    "name",
    "osType",
    "vhd.uri",
    "writeAcceleratorEnabled",
]
# 3.4: the disk-encryption key sub-fields date from 2021-11-01 (only `enabled` before).
_DISK_KEYS = [
    "encryptionSettings.diskEncryptionKey.sourceVault.id",
    "encryptionSettings.diskEncryptionKey.secretUrl",
    "encryptionSettings.keyEncryptionKey.sourceVault.id",
    "encryptionSettings.keyEncryptionKey.keyUrl",
]
_SP = "compute.storageProfile"
_NIC = "network.interface[]"

REFERENCE_BY_VERSION: dict[str, list[str]] = {
    "2017-04-02": [
        *(
            f"compute.{name}"
            for name in (
                "location",
                "name",
                "offer",
                "osType",
                "platformFaultDomain",
                "platformUpdateDomain",
                "publisher",
                "sku",
                "version",
                "vmId",
                "vmSize",
            )
        ),
        # 3.5: all network fields date from 2017-04-02.
        f"{_NIC}.ipv4.ipAddress[].privateIpAddress",
        f"{_NIC}.ipv4.ipAddress[].publicIpAddress",
        f"{_NIC}.ipv4.subnet[].address",
        f"{_NIC}.ipv4.subnet[].prefix",
        f"{_NIC}.ipv6.ipAddress[].privateIpAddress",
        f"{_NIC}.macAddress",
    ],
    "2017-08-01": [
        "compute.placementGroupId",
        "compute.resourceGroupName",
        "compute.subscriptionId",
        "compute.tags",
    ],
    "2017-12-01": ["compute.vmScaleSetName", "compute.zone"],
    "2018-04-02": [
        "compute.plan.name",
        "compute.plan.product",
        "compute.plan.publisher",
        "compute.publicKeys[].keyData",
        "compute.publicKeys[].path",
    ],
    "2018-10-01": ["compute.azEnvironment", "compute.provider"],
    "2019-02-01": ["compute.customData"],
    "2019-03-11": ["compute.resourceId"],
    "2019-06-01": [
        *(f"{_SP}.imageReference.{k}" for k in ("id", "offer", "publisher", "sku", "version")),
        *(f"{_SP}.osDisk.{k}" for k in _OS_DISK),
        *(f"{_SP}.dataDisks[].{k}" for k in [*_OS_DISK, "lun"]),
    ],
    "2019-06-04": ["compute.tagsList[].name", "compute.tagsList[].value"],
    "2020-06-01": [
        "compute.isHostCompatibilityLayerVm",
        "compute.securityProfile.secureBootEnabled",
        "compute.securityProfile.virtualTpmEnabled",
    ],
    "2020-07-15": ["compute.osProfile.adminUsername", "compute.osProfile.computerName"],
    "2020-09-01": ["compute.licenseType"],
    "2020-10-01": ["compute.osProfile.disablePasswordAuthentication"],
    "2020-12-01": ["compute.evictionPolicy", "compute.priority"],
    "2021-01-01": ["compute.userData"],
    "2021-02-01": [f"{_SP}.resourceDisk.size"],
    "2021-03-01": [
        "compute.extendedLocation.type",
        "compute.extendedLocation.name",
        "compute.virtualMachineScaleSet.id",
    ],
    "2021-05-01": [
        f"{_SP}.dataDisks[].{k}"
        for k in (
            "bytesPerSecondThrottle",
            "diskCapacityBytes",
            "isSharedDisk",
            "isUltraDisk",
            "opsPerSecondThrottle",
        )
    ],
    "2021-10-01": ["compute.platformSubFaultDomain"],
    "2021-11-01": [
        "compute.additionalCapabilities.hibernationEnabled",
        "compute.securityProfile.encryptionAtHost",
        *(f"{_SP}.osDisk.{k}" for k in _DISK_KEYS),
        # The docs state the key dates for the OS disk; data disks share the shape (INFERRED).
        *(f"{_SP}.dataDisks[].{k}" for k in _DISK_KEYS),
    ],
    "2021-11-15": ["compute.host.id", "compute.hostGroup.id"],
    "2021-12-13": ["compute.securityProfile.securityType"],
    "2023-07-01": [
        f"{_SP}.imageReference.{k}"
        for k in ("communityGalleryImageId", "sharedGalleryImageId", "exactVersion")
    ],
    "2023-11-15": ["compute.physicalZone"],
}
REFERENCE: dict[str, str] = {
    path: version for version, paths in REFERENCE_BY_VERSION.items() for path in paths
}


def model_leaves(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every leaf path of a pydantic model, with `[]` for list items."""
    out: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        annotation: Any = info.annotation
        if typing.get_origin(annotation) is list:
            annotation = typing.get_args(annotation)[0]
            path += "[]"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out |= model_leaves(annotation, path)
        else:
            out.add(path)
    return out


def full_document(model: type[BaseModel]) -> dict[str, Any]:
    """A document with every field set to a non-empty value and one item in every list,
    so gating alone decides what is served."""
    doc: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation: Any = info.annotation
        is_list = typing.get_origin(annotation) is list
        if is_list:
            annotation = typing.get_args(annotation)[0]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            value: Any = full_document(annotation)
        else:
            value = f"value-of-{name}"
        doc[name] = [value] if is_list else value
    return doc


def served_leaves(node: Any, prefix: str = "") -> set[str]:
    if isinstance(node, str):
        return {prefix}
    if isinstance(node, list):
        return {p for item in node for p in served_leaves(item, prefix + "[]")}
    return {p for k, v in node.items() for p in served_leaves(v, f"{prefix}.{k}" if prefix else k)}


def test_reference_versions_are_general_versions() -> None:
    assert set(REFERENCE_BY_VERSION) <= GENERAL_SET
    assert set(FIELD_INTRODUCED.values()) <= GENERAL_SET
    assert len(REFERENCE) == sum(len(paths) for paths in REFERENCE_BY_VERSION.values())


def test_every_model_field_is_in_the_reference_table() -> None:
    unknown = model_leaves(Instance) - set(REFERENCE)
    assert not unknown, f"VM-file fields with no api-version in the reference: {sorted(unknown)}"


def test_every_reference_row_is_a_model_field() -> None:
    missing = set(REFERENCE) - model_leaves(Instance)
    assert not missing, f"reference fields the VM-file model lacks: {sorted(missing)}"


def test_every_core_row_names_a_model_field() -> None:
    leaves = model_leaves(Instance)
    for row in FIELD_INTRODUCED:
        assert any(leaf == row or leaf.startswith((row + ".", row + "[]")) for leaf in leaves), row


def test_omitted_when_empty_is_only_license_type() -> None:
    # 3.3: licenseType is present only for Azure Hybrid Benefit VMs.
    assert frozenset({"compute.licenseType"}) == OMIT_WHEN_EMPTY


@pytest.mark.parametrize("version", GENERAL_VERSIONS)
def test_core_gate_serves_exactly_the_reference_fields(version: str) -> None:
    served = served_leaves(gate(full_document(Instance), version))
    expected = {path for path, since in REFERENCE.items() if since <= fields_version(version)}
    assert sorted(served - expected) == [], "served before the reference introduces them"
    assert sorted(expected - served) == [], "introduced by the reference but not served"


@pytest.mark.parametrize("path", sorted(REFERENCE))
def test_each_field_first_appears_in_its_version(path: str) -> None:
    document = full_document(Instance)
    first = next(v for v in GENERAL_VERSIONS if path in served_leaves(gate(document, v)))
    assert fields_version(first) == REFERENCE[path]

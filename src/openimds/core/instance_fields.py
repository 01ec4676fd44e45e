"""When each instance field appeared, from the api-version columns of Azure's IMDS docs.

Paths use dots for objects and `[]` for array items. A path that is not listed inherits
the version of its nearest listed ancestor, so only the fields that arrived later than
their parent need a row. tests/unit/core/test_instance_fields.py checks this table against
a hand-made copy of Azure's tables and against the VM-file model.
"""

from __future__ import annotations

from typing import Final

FIELD_INTRODUCED: Final[dict[str, str]] = {
    "compute": "2017-04-02",
    "network": "2017-04-02",
    # compute
    "compute.location": "2017-04-02",
    "compute.name": "2017-04-02",
    "compute.offer": "2017-04-02",
    "compute.osType": "2017-04-02",
    "compute.platformFaultDomain": "2017-04-02",
    "compute.platformUpdateDomain": "2017-04-02",
    "compute.publisher": "2017-04-02",
    "compute.sku": "2017-04-02",
    "compute.version": "2017-04-02",
    "compute.vmId": "2017-04-02",
    "compute.vmSize": "2017-04-02",
    "compute.placementGroupId": "2017-08-01",
    "compute.resourceGroupName": "2017-08-01",
    "compute.subscriptionId": "2017-08-01",
    "compute.tags": "2017-08-01",
    "compute.vmScaleSetName": "2017-12-01",
    "compute.zone": "2017-12-01",
    "compute.plan": "2018-04-02",
    "compute.publicKeys": "2018-04-02",
    "compute.azEnvironment": "2018-10-01",
    "compute.provider": "2018-10-01",
    "compute.customData": "2019-02-01",
    "compute.resourceId": "2019-03-11",
    "compute.storageProfile": "2019-06-01",
    "compute.tagsList": "2019-06-04",
    "compute.isHostCompatibilityLayerVm": "2020-06-01",
    "compute.securityProfile": "2020-06-01",
    "compute.osProfile": "2020-07-15",
    "compute.licenseType": "2020-09-01",
    "compute.osProfile.disablePasswordAuthentication": "2020-10-01",
    "compute.evictionPolicy": "2020-12-01",
    "compute.priority": "2020-12-01",
    "compute.userData": "2021-01-01",
    "compute.extendedLocation": "2021-03-01",
    "compute.virtualMachineScaleSet": "2021-03-01",
    "compute.platformSubFaultDomain": "2021-10-01",
    "compute.additionalCapabilities": "2021-11-01",
    "compute.securityProfile.encryptionAtHost": "2021-11-01",
    "compute.host": "2021-11-15",
    "compute.hostGroup": "2021-11-15",
    "compute.securityProfile.securityType": "2021-12-13",
    "compute.physicalZone": "2023-11-15",
    # storageProfile
    "compute.storageProfile.resourceDisk": "2021-02-01",
    "compute.storageProfile.imageReference.communityGalleryImageId": "2023-07-01",
    "compute.storageProfile.imageReference.sharedGalleryImageId": "2023-07-01",
    "compute.storageProfile.imageReference.exactVersion": "2023-07-01",
    "compute.storageProfile.osDisk.encryptionSettings.diskEncryptionKey": "2021-11-01",
    "compute.storageProfile.osDisk.encryptionSettings.keyEncryptionKey": "2021-11-01",
    "compute.storageProfile.dataDisks[].encryptionSettings.diskEncryptionKey": "2021-11-01",
    "compute.storageProfile.dataDisks[].encryptionSettings.keyEncryptionKey": "2021-11-01",
    "compute.storageProfile.dataDisks[].bytesPerSecondThrottle": "2021-05-01",
    "compute.storageProfile.dataDisks[].diskCapacityBytes": "2021-05-01",
    "compute.storageProfile.dataDisks[].isSharedDisk": "2021-05-01",
    "compute.storageProfile.dataDisks[].isUltraDisk": "2021-05-01",
    "compute.storageProfile.dataDisks[].opsPerSecondThrottle": "2021-05-01",
}

# Fields served only when they hold a value (Azure documents licenseType as present only
# for Azure Hybrid Benefit VMs).
OMIT_WHEN_EMPTY: Final[frozenset[str]] = frozenset({"compute.licenseType"})


def introduced(path: str, inherited: str) -> str:
    """The version a field appeared in, given the version its parent appeared in."""
    own = FIELD_INTRODUCED.get(path)
    return inherited if own is None or own < inherited else own

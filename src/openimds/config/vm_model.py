"""The VM file: pydantic models of one VM as a user describes it.

`instance` mirrors Azure's /metadata/instance JSON at the newest api-version, so a real
response pasted from an Azure VM validates as is. Every field is optional and defaults to
Azure's empty value (an empty string), so a five-line VM is valid. Unknown keys are refused, which
catches typos such as `vmsize`; YAML scalars (numbers, booleans) become the strings Azure
sends (`0` -> "0", `false` -> "false").
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyAddress,
    field_validator,
    model_validator,
)

from openimds.config.identity_model import Identities, check_guid

_MAC = re.compile(r"^[0-9A-Fa-f]{12}$")
# The image fields Azure serves twice: compute.X and compute.storageProfile.imageReference.X.
_IMAGE_FIELDS = ("publisher", "offer", "sku", "version")


def _to_azure_string(value: Any) -> Any:
    """Azure sends every primitive as a string; accept what YAML makes of them."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


# The schema admits what YAML makes of a scalar; validation turns it into a string.
AzStr = Annotated[
    str, BeforeValidator(_to_azure_string, json_schema_input_type=str | int | float | bool | None)
]


def vm_resource_id(
    subscription: str, group: str, name: str, scale_set: str = "", flexible: bool = False
) -> str:
    """The ARM id of a VM, as compute.resourceId and a token's xms_mirid carry it. An
    instance of a uniform scale set (named `<set>_<n>`) sits under its scale set; a VM of
    a flexible one (virtualMachineScaleSet.id set) is a plain VM."""
    base = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute"
    set_name, _, instance = name.rpartition("_")
    if scale_set and not flexible and set_name == scale_set and instance.isdigit():
        return f"{base}/virtualMachineScaleSets/{scale_set}/virtualMachines/{instance}"
    return f"{base}/virtualMachines/{name}"


def _given(data: dict[str, Any], key: str) -> str:
    value = _to_azure_string(data.get(key))
    return value if isinstance(value, str) else ""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_M = TypeVar("_M", bound=_Strict)


def _empty(model: type[_M]) -> Callable[[], _M]:
    """The default of a nested part a VM file leaves out: one empty instance that every
    VM shares (models are frozen), instead of a new one validated per VM, which was
    close to half of validating a VM file of thousands of VMs."""
    empty = model()
    return lambda: empty


class Plan(_Strict):
    name: AzStr = ""
    product: AzStr = ""
    publisher: AzStr = ""


class PublicKey(_Strict):
    keyData: AzStr = ""
    path: AzStr = ""


class Tag(_Strict):
    name: AzStr = ""
    value: AzStr = ""


class Id(_Strict):
    id: AzStr = ""


class Uri(_Strict):
    uri: AzStr = ""


class OsProfile(_Strict):
    adminUsername: AzStr = ""
    computerName: AzStr = ""
    disablePasswordAuthentication: AzStr = ""


class SecurityProfile(_Strict):
    secureBootEnabled: AzStr = ""
    virtualTpmEnabled: AzStr = ""
    encryptionAtHost: AzStr = ""
    securityType: AzStr = ""


class AdditionalCapabilities(_Strict):
    hibernationEnabled: AzStr = ""


class ExtendedLocation(_Strict):
    type: AzStr = ""
    name: AzStr = ""


class ImageReference(_Strict):
    id: AzStr = ""
    offer: AzStr = ""
    publisher: AzStr = ""
    sku: AzStr = ""
    version: AzStr = ""
    communityGalleryImageId: AzStr = ""
    sharedGalleryImageId: AzStr = ""
    exactVersion: AzStr = ""


class DiffDiskSettings(_Strict):
    option: AzStr = ""


class DiskEncryptionKey(_Strict):
    sourceVault: Id = Field(default_factory=_empty(Id))
    secretUrl: AzStr = ""


class KeyEncryptionKey(_Strict):
    sourceVault: Id = Field(default_factory=_empty(Id))
    keyUrl: AzStr = ""


class EncryptionSettings(_Strict):
    enabled: AzStr = ""
    diskEncryptionKey: DiskEncryptionKey = Field(default_factory=_empty(DiskEncryptionKey))
    keyEncryptionKey: KeyEncryptionKey = Field(default_factory=_empty(KeyEncryptionKey))


class ManagedDisk(_Strict):
    id: AzStr = ""
    storageAccountType: AzStr = ""


class OsDisk(_Strict):
    caching: AzStr = ""
    createOption: AzStr = ""
    diffDiskSettings: DiffDiskSettings = Field(default_factory=_empty(DiffDiskSettings))
    diskSizeGB: AzStr = ""
    encryptionSettings: EncryptionSettings = Field(default_factory=_empty(EncryptionSettings))
    image: Uri = Field(default_factory=_empty(Uri))
    managedDisk: ManagedDisk = Field(default_factory=_empty(ManagedDisk))
    name: AzStr = ""
    osType: AzStr = ""
    vhd: Uri = Field(default_factory=_empty(Uri))
    writeAcceleratorEnabled: AzStr = ""


class DataDisk(OsDisk):
    bytesPerSecondThrottle: AzStr = ""
    diskCapacityBytes: AzStr = ""
    isSharedDisk: AzStr = ""
    isUltraDisk: AzStr = ""
    lun: AzStr = ""
    opsPerSecondThrottle: AzStr = ""


class ResourceDisk(_Strict):
    size: AzStr = ""


class StorageProfile(_Strict):
    dataDisks: list[DataDisk] = Field(default_factory=list)
    imageReference: ImageReference = Field(default_factory=_empty(ImageReference))
    osDisk: OsDisk = Field(default_factory=_empty(OsDisk))
    resourceDisk: ResourceDisk = Field(default_factory=_empty(ResourceDisk))


class Compute(_Strict):
    additionalCapabilities: AdditionalCapabilities = Field(
        default_factory=_empty(AdditionalCapabilities)
    )
    azEnvironment: AzStr = ""
    customData: AzStr = ""
    evictionPolicy: AzStr = ""
    extendedLocation: ExtendedLocation = Field(default_factory=_empty(ExtendedLocation))
    host: Id = Field(default_factory=_empty(Id))
    hostGroup: Id = Field(default_factory=_empty(Id))
    isHostCompatibilityLayerVm: AzStr = ""
    licenseType: AzStr = ""
    location: AzStr = ""
    name: AzStr = ""
    offer: AzStr = ""
    osProfile: OsProfile = Field(default_factory=_empty(OsProfile))
    osType: AzStr = ""
    physicalZone: AzStr = ""
    placementGroupId: AzStr = ""
    plan: Plan = Field(default_factory=_empty(Plan))
    platformFaultDomain: AzStr = ""
    platformSubFaultDomain: AzStr = ""
    platformUpdateDomain: AzStr = ""
    priority: AzStr = ""
    provider: AzStr = ""
    publicKeys: list[PublicKey] = Field(default_factory=list)
    publisher: AzStr = ""
    resourceGroupName: AzStr = ""
    resourceId: AzStr = ""
    securityProfile: SecurityProfile = Field(default_factory=_empty(SecurityProfile))
    sku: AzStr = ""
    storageProfile: StorageProfile = Field(default_factory=_empty(StorageProfile))
    subscriptionId: AzStr = ""
    tags: AzStr = ""
    tagsList: list[Tag] = Field(default_factory=list)
    userData: AzStr = ""
    version: AzStr = ""
    virtualMachineScaleSet: Id = Field(default_factory=_empty(Id))
    vmId: AzStr = ""
    vmScaleSetName: AzStr = ""
    vmSize: AzStr = ""
    zone: AzStr = ""

    @model_validator(mode="before")
    @classmethod
    def _tags_both_ways(cls, data: Any) -> Any:
        """Azure sends tags twice: `k:v;k:v` and tagsList. A file may give either."""
        if not isinstance(data, dict):
            return data
        tags, tags_list = data.get("tags"), data.get("tagsList")
        if tags and not tags_list and isinstance(tags, str):
            pairs = [t.partition(":") for t in tags.split(";") if t]
            data = {**data, "tagsList": [{"name": k, "value": v} for k, _, v in pairs]}
        elif tags_list and not tags and isinstance(tags_list, list):
            joined = ";".join(
                f"{_to_azure_string(t.get('name'))}:{_to_azure_string(t.get('value'))}"
                for t in tags_list
                if isinstance(t, dict)
            )
            data = {**data, "tags": joined}
        return data

    @model_validator(mode="before")
    @classmethod
    def _derive_resource_id(cls, data: Any) -> Any:
        """A token names its VM by this id (xms_mirid); derive it when the file leaves it
        out but gives what it is made of, so the instance document and tokens agree."""
        if not isinstance(data, dict) or _given(data, "resourceId"):
            return data
        parts = ("subscriptionId", "resourceGroupName", "name")
        sub, group, name = (_given(data, key) for key in parts)
        if not (sub and group and name):
            return data
        scale_set = data.get("virtualMachineScaleSet")
        flexible = isinstance(scale_set, dict) and bool(scale_set.get("id"))
        resource_id = vm_resource_id(sub, group, name, _given(data, "vmScaleSetName"), flexible)
        return {**data, "resourceId": resource_id}

    @model_validator(mode="before")
    @classmethod
    def _image_both_ways(cls, data: Any) -> Any:
        """Azure sends the image's publisher/offer/sku/version twice: in compute and in
        storageProfile.imageReference. A file may give either; each empty one is filled."""
        if not isinstance(data, dict):
            return data
        storage = data.get("storageProfile", {})
        image = storage.get("imageReference", {}) if isinstance(storage, dict) else None
        if not isinstance(image, dict):
            return data
        top, nested = dict(data), dict(image)
        copied = False
        for key in _IMAGE_FIELDS:
            mine, theirs = _given(top, key), _given(nested, key)
            if theirs and not mine:
                top[key], copied = nested[key], True
            elif mine and not theirs:
                nested[key], copied = top[key], True
        if not copied:  # as given: a VM without an image keeps the shared empty profile
            return data
        top["storageProfile"] = {**storage, "imageReference": nested}
        return top

    @model_validator(mode="after")
    def _host_or_group(self) -> Compute:
        if self.host.id and self.hostGroup.id:
            raise ValueError("a VM has either host.id or hostGroup.id, never both")
        return self

    @field_validator("customData")
    @classmethod
    def _custom_data_is_never_served(cls, value: str) -> str:
        # Azure disabled customData in IMDS: it is always "" (userData replaced it).
        if value:
            raise ValueError('Azure never serves customData (always ""); use userData')
        return value

    # vmId is the VM's unique id, a GUID.
    _vm_id = field_validator("vmId")(check_guid)

    @field_validator("userData")
    @classmethod
    def _user_data_is_base64(cls, value: str) -> str:
        # Azure stores userData base64-encoded and serves it as stored.
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError(
                "not base64 (Azure stores userData base64-encoded; encode it, e.g. "
                "`base64 -w0 script.sh`)"
            ) from None
        return value


class IpAddress(_Strict):
    privateIpAddress: AzStr = ""
    publicIpAddress: AzStr = ""


class Ipv6Address(_Strict):
    privateIpAddress: AzStr = ""


class Subnet(_Strict):
    address: AzStr = ""
    prefix: AzStr = ""


class Ipv4(_Strict):
    ipAddress: list[IpAddress] = Field(default_factory=list)
    subnet: list[Subnet] = Field(default_factory=list)


class Ipv6(_Strict):
    ipAddress: list[Ipv6Address] = Field(default_factory=list)


class Interface(_Strict):
    ipv4: Ipv4 = Field(default_factory=_empty(Ipv4))
    ipv6: Ipv6 = Field(default_factory=_empty(Ipv6))
    macAddress: AzStr = ""

    @field_validator("macAddress")
    @classmethod
    def _normalise_mac(cls, value: str) -> str:
        # Azure sends a MAC as 12 upper-case hex digits with no separators.
        bare = value.replace(":", "").replace("-", "")
        if value and not _MAC.match(bare):
            raise ValueError(f"not a MAC address: {value!r} (12 hex digits, e.g. 000D3AF806EC)")
        return bare.upper()


class Network(_Strict):
    interface: list[Interface] = Field(default_factory=list)


class Instance(_Strict):
    compute: Compute = Field(default_factory=_empty(Compute))
    network: Network = Field(default_factory=_empty(Network))


class PublicIp(_Strict):
    frontendIpAddress: str = ""
    privateIpAddress: str = ""


class InboundRule(_Strict):
    frontendIpAddress: str = ""
    protocol: str = "tcp"
    frontendPort: int = 0
    backendPort: int = 0
    privateIpAddress: str = ""


class OutboundRule(_Strict):
    frontendIpAddress: str = ""
    privateIpAddress: str = ""


class TunnelInterface(_Strict):
    gatewayIpAddress: str = ""
    gatewayPort: int = 0
    identifier: int = 0
    type: str = "internal"
    protocol: str = "vxlan"
    localIpAddress: str = ""
    localPort: int = 0


class LoadBalancer(_Strict):
    """Section 9: ports and identifiers are JSON integers, the rest strings."""

    publicIpAddresses: list[PublicIp] = Field(default_factory=list)
    inboundRules: list[InboundRule] = Field(default_factory=list)
    outboundRules: list[OutboundRule] = Field(default_factory=list)
    # Only VMs behind a Gateway load balancer have tunnels; absent otherwise.
    tunnelInterfaces: list[TunnelInterface] | None = None


def _address_text(value: Any) -> Any:
    # An address is text: pydantic would read a number (or false, as 0) as an IPv4 address.
    if not isinstance(value, str):
        raise ValueError(f"expected an IPv4 or IPv6 address as text, got {value!r}")
    return value


Address = Annotated[IPvAnyAddress, BeforeValidator(_address_text)]


# Azure's rule for a (Linux) VM's name, which also keeps every name one path segment of
# the admin API and the console (`/vms/{name}`) with nothing to encode: 1 to 64 letters,
# digits, '-', '_' and '.', not starting with '_', not ending with '.' or '-'.
VM_NAME = re.compile(r"(?!_)[A-Za-z0-9._-]{0,63}[A-Za-z0-9_]", re.ASCII)
VM_NAME_RULE = (
    "a VM name holds 1 to 64 letters, digits, hyphens, underscores and periods, and does "
    "not start with an underscore or end with a period or a hyphen (Azure's rule)"
)


def check_vm_name(name: str) -> str:
    if not VM_NAME.fullmatch(name):
        raise ValueError(f"{name!r}: {VM_NAME_RULE}")
    return name


class VmSpec(_Strict):
    """One VM of the file. `name` defaults to compute.name (then vmId)."""

    name: str = ""
    instance: Instance = Field(default_factory=_empty(Instance))
    addresses: list[Address] = Field(default_factory=list)
    loadbalancer: LoadBalancer | None = None
    # Not served by IMDS (no such instance field); scheduled events target it (8: events for
    # an availability set reach every VM in it).
    availabilitySet: str = ""
    identities: Identities | None = None

    @field_validator("name")
    @classmethod
    def _routable_name(cls, value: str) -> str:
        return value and check_vm_name(value)

    @model_validator(mode="after")
    def _routable_display_name(self) -> VmSpec:
        # Without `name`, compute.name (or vmId) names the VM: the same rule holds.
        if not self.name and self.display_name:
            source = "instance.compute.name" if self.instance.compute.name else "vmId"
            try:
                check_vm_name(self.display_name)
            except ValueError as exc:
                raise ValueError(f"the VM's name (from {source}) {exc}") from None
        return self

    @property
    def display_name(self) -> str:
        return self.name or self.instance.compute.name or self.instance.compute.vmId

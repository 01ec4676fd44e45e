"""Which managed identities each VM holds, with every id filled in.

A VM file may leave ids out. They are generated here (never in core), once, and kept in
the state store under (VM, identity slot, field), so a restart hands out the same ids and
tokens issued before it still name the same principals. A user-assigned identity's slot
is its resource id when the file gives one, else its position in the list.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from openimds.config.identity_model import Identities, guid
from openimds.config.vm_model import VmSpec, vm_resource_id
from openimds.core.identity_api import VmIdentities
from openimds.core.inventory import VmSnapshot
from openimds.core.tokens import ManagedIdentity
from openimds.fleet.inventory import Fleet
from openimds.store import CorruptRecord, Store, decoding

KIND = "identity_id"
TENANT_SETTING = "identity_tenant_id"
_ZERO_SUB = "00000000-0000-0000-0000-000000000000"
_GROUP = "openimds"


def default_tenant(store: Store, configured: str | None) -> str:
    """The tenant of VMs that name none: configured, else generated once per state."""
    if configured:
        return configured.lower()
    return store.put_setting_once(TENANT_SETTING, str(uuid.uuid4()))


class StoreDirectory:
    """core.identity.IdentityDirectory over the fleet's VM specs and the state store.
    Resolved once per VM revision, so the token hot path is one dict lookup."""

    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        tenant: str,
        new_guid: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.tenant = tenant
        self.new_guid = new_guid
        self._memo: dict[str, tuple[int, VmIdentities | None]] = {}

    def identities(self, vm: VmSnapshot) -> VmIdentities | None:
        memo = self._memo.get(vm.id)
        if memo is not None and memo[0] == vm.revision:
            return memo[1]
        spec = self.fleet.specs.get(vm.id)
        resolved = None if spec is None or spec.identities is None else self.resolve(spec)
        self._memo[vm.id] = (vm.revision, resolved)
        return resolved

    def all(self) -> dict[str, VmIdentities | None]:
        """Every VM's identities (resolving, and so generating, what is missing)."""
        return {name: self.identities(vm) for name, vm in self.fleet.vms.items()}

    def primary_tenant(self) -> str:
        """The tenant the root discovery document speaks for: the first VM's that has
        identities, else the default one."""
        for ids in self.all().values():
            if ids is not None:
                return ids.tenant_id
        return self.tenant

    def tenants(self) -> set[str]:
        found = {ids.tenant_id for ids in self.all().values() if ids is not None}
        return found | {self.tenant}

    def resolve(self, spec: VmSpec) -> VmIdentities:
        block: Identities = spec.identities or Identities()
        name = spec.display_name
        tenant = block.tenantId or self.tenant
        system = None
        if block.systemAssigned is not None:
            given = block.systemAssigned
            system = ManagedIdentity(
                client_id=given.clientId or self._generated(name, "system", "clientId"),
                object_id=given.objectId or self._generated(name, "system", "objectId"),
                resource_id=spec.instance.compute.resourceId or _vm_resource_id(spec),
                system=True,
            )
        users = []
        for index, user in enumerate(block.userAssigned):
            slot = f"user:{user.resourceId.lower()}" if user.resourceId else f"user#{index}"
            users.append(
                ManagedIdentity(
                    client_id=user.clientId or self._generated(name, slot, "clientId"),
                    object_id=user.objectId or self._generated(name, slot, "objectId"),
                    resource_id=user.resourceId or _user_resource_id(spec, index),
                )
            )
        return VmIdentities(tenant, system, tuple(users))

    def _generated(self, vm: str, slot: str, field: str) -> str:
        key = f"{vm}/{slot}/{field}"
        stored = self.store.put_record_once(KIND, key, self.new_guid())
        # A damaged id would be handed out in every token for this identity.
        if not stored:
            raise CorruptRecord(KIND, key, "empty, not a GUID")
        with decoding(KIND, key):
            guid(stored)
        return stored


def _scope(spec: VmSpec) -> str:
    compute = spec.instance.compute
    sub = compute.subscriptionId or _ZERO_SUB
    group = compute.resourceGroupName or _GROUP
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers"


def _vm_resource_id(spec: VmSpec) -> str:
    """Only when the file gives no resourceId and too little to derive one (the VM model
    derives it otherwise): the same form, with placeholders for what is missing."""
    compute = spec.instance.compute
    return vm_resource_id(
        compute.subscriptionId or _ZERO_SUB,
        compute.resourceGroupName or _GROUP,
        spec.display_name,
        compute.vmScaleSetName,
        flexible=bool(compute.virtualMachineScaleSet.id),
    )


def _user_resource_id(spec: VmSpec, index: int) -> str:
    name = f"{spec.display_name}-identity-{index + 1}"
    return f"{_scope(spec)}/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"

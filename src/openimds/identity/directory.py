"""Which managed identities each VM holds, with every id filled in.

A VM file may leave ids out. They are generated here (never in core), once, and kept in
the state store under (VM, identity slot, field), so a restart hands out the same ids and
tokens issued before it still name the same principals. A user-assigned identity's slot
is its resource id when the file gives one, else its position in the list.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterator, Mapping

from openimds.config.identity_model import Identities, guid
from openimds.config.vm_model import vm_resource_id
from openimds.core.identity_api import VmIdentities
from openimds.core.inventory import VmSnapshot
from openimds.core.tokens import ManagedIdentity
from openimds.fleet.inventory import Fleet
from openimds.store import Conflict, CorruptRecord, Expect, Put, Store, StoreError, decoding

KIND = "identity_id"
TENANT_SETTING = "identity_tenant_id"
_ZERO_SUB = "00000000-0000-0000-0000-000000000000"
_GROUP = "openimds"


def random_guids(batch: int = 256) -> Callable[[], str]:
    """Version-4 GUIDs as uuid4 makes them (122 random bits from the system's random
    source), `batch` read at a time and formatted without a UUID object: a fleet's start
    generates two per VM, and uuid4 took 60 ms of a 10,000-VM start."""
    return functools.partial(next, _guids(batch))


def _guids(batch: int) -> Iterator[str]:
    while True:
        hexed = os.urandom(16 * batch).hex()
        for i in range(0, 32 * batch, 32):
            # The version nibble is 4; the variant's two top bits are 10 (RFC 9562 4.1).
            yield (
                f"{hexed[i : i + 8]}-{hexed[i + 8 : i + 12]}-4{hexed[i + 13 : i + 16]}-"
                f"{_VARIANT[hexed[i + 16]]}{hexed[i + 17 : i + 20]}-{hexed[i + 20 : i + 32]}"
            )


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


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
        new_guid: Callable[[], str] | None = None,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.tenant = tenant
        self.new_guid = new_guid or random_guids()
        self._memo: dict[str, tuple[int, VmIdentities | None]] = {}
        self._ids: dict[str, str] = {}  # stored ids, by record key
        self._pending: dict[str, str] | None = None  # ids made by prime(), to be written

    def prime(self) -> None:
        """Resolve every VM now, writing all the ids that are missing in one batch: a
        fleet of thousands of VMs starts with one write, not two per identity. The batch
        is conditional (each id still missing), so nodes starting together on one store
        agree: the loser reloads and takes the winner's ids."""
        for _ in range(3):
            self._load_ids()
            self._memo.clear()
            self._pending = {}
            try:
                self.all()
                pending = self._pending
            finally:
                self._pending = None
            if not pending:
                return
            try:
                self.store.write_batch(
                    [Put(KIND, key, value) for key, value in pending.items()],
                    expect=[Expect(KIND, key, None) for key in pending],
                )
            except Conflict:
                continue
            self._ids.update(pending)
            return
        raise StoreError("managed identities: the state store kept changing; start again")

    def _load_ids(self) -> None:
        ids = {}
        for key, value in self.store.list_records(KIND):
            ids[key] = _checked(key, value)
        self._ids = ids

    def identities(self, vm: VmSnapshot) -> VmIdentities | None:
        memo = self._memo.get(vm.id)
        if memo is not None and memo[0] == vm.revision:
            return memo[1]
        block = self.fleet.identities(vm.id)
        resolved = None if block is None else self.resolve(vm, block)
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

    def resolve(self, vm: VmSnapshot, block: Identities) -> VmIdentities:
        """A VM's identities from its `identities` block and its compute document (the
        snapshot's: resolving a fleet never decodes whole VM models)."""
        name = vm.name
        compute = _Compute(vm.compute)
        tenant = block.tenantId or self.tenant
        system = None
        if block.systemAssigned is not None:
            given = block.systemAssigned
            system = ManagedIdentity(
                client_id=given.clientId or self._generated(name, "system", "clientId"),
                object_id=given.objectId or self._generated(name, "system", "objectId"),
                resource_id=compute.text("resourceId") or _vm_resource_id(name, compute),
                system=True,
            )
        users = []
        for index, user in enumerate(block.userAssigned):
            slot = f"user:{user.resourceId.lower()}" if user.resourceId else f"user#{index}"
            users.append(
                ManagedIdentity(
                    client_id=user.clientId or self._generated(name, slot, "clientId"),
                    object_id=user.objectId or self._generated(name, slot, "objectId"),
                    resource_id=user.resourceId or _user_resource_id(name, compute, index),
                )
            )
        return VmIdentities(tenant, system, tuple(users))

    def _generated(self, vm: str, slot: str, field: str) -> str:
        key = f"{vm}/{slot}/{field}"
        known = self._ids.get(key)
        if known is not None:
            return known
        if self._pending is not None:  # prime(): written together afterwards
            return self._pending.setdefault(key, self.new_guid())
        # A VM added later: the first writer wins, so nodes hand out the same id.
        stored = _checked(key, self.store.put_record_once(KIND, key, self.new_guid()))
        self._ids[key] = stored
        return stored


class _Compute:
    """String fields of a served compute document, "" when absent."""

    def __init__(self, compute: Mapping[str, object]) -> None:
        self.compute = compute

    def text(self, name: str) -> str:
        value = self.compute.get(name, "")
        return value if isinstance(value, str) else ""

    def scale_set_id(self) -> str:
        value = self.compute.get("virtualMachineScaleSet")
        return str(value.get("id", "")) if isinstance(value, Mapping) else ""


def _scope(compute: _Compute) -> str:
    sub = compute.text("subscriptionId") or _ZERO_SUB
    group = compute.text("resourceGroupName") or _GROUP
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers"


def _vm_resource_id(name: str, compute: _Compute) -> str:
    """Only when the file gives no resourceId and too little to derive one (the VM model
    derives it otherwise): the same form, with placeholders for what is missing."""
    return vm_resource_id(
        compute.text("subscriptionId") or _ZERO_SUB,
        compute.text("resourceGroupName") or _GROUP,
        name,
        compute.text("vmScaleSetName"),
        flexible=bool(compute.scale_set_id()),
    )


def _user_resource_id(name: str, compute: _Compute, index: int) -> str:
    identity = f"{name}-identity-{index + 1}"
    return f"{_scope(compute)}/Microsoft.ManagedIdentity/userAssignedIdentities/{identity}"


def _checked(key: str, stored: str) -> str:
    # A damaged id would be handed out in every token for this identity.
    if not stored:
        raise CorruptRecord(KIND, key, "empty, not a GUID")
    with decoding(KIND, key):
        guid(stored)
    return stored

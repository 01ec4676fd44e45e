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
from openimds.core.identity.identity_api import VmIdentities
from openimds.core.identity.tokens import ManagedIdentity
from openimds.core.vm import VmSnapshot
from openimds.inventory.live import LiveInventory
from openimds.store import Conflict, CorruptRecord, Expect, Put, Store, StoreError, decoding

KIND = "identity_id"
TENANT_SETTING = "identity_tenant_id"
_ZERO_SUB = "00000000-0000-0000-0000-000000000000"
_GROUP = "openimds"
SLICE = 500  # VMs a warm-up step resolves: a few milliseconds between requests


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
    """core.identity.identity_api.IdentityDirectory over the fleet's VM specs and the state store.
    Resolved once per VM revision, so the token hot path is one dict lookup."""

    def __init__(
        self,
        store: Store,
        inventory: LiveInventory,
        tenant: str,
        new_guid: Callable[[], str] | None = None,
    ) -> None:
        self.store = store
        self.inventory = inventory
        self.tenant = tenant
        self.new_guid = new_guid or random_guids()
        self._memo: dict[str, tuple[int, VmIdentities | None]] = {}
        self._ids: dict[str, str] = {}  # stored ids, by record key
        self._warming: Iterator[None] | None = None  # warm_up() while it has steps left

    def warm_up(self) -> Iterator[None]:
        """Resolve every VM, then write all the ids that are missing in one batch: a
        fleet of thousands of VMs writes once, not twice per identity. The server runs
        it once its listeners are up, SLICE VMs a step between requests, so a fleet's
        start answers without waiting for it (0.25 s of a 10,000-VM start). A request
        meanwhile resolves its own VM as it would without a warm-up (that VM's ids are
        written first, the first writer wins); the batch leaves such VMs out. The batch
        is conditional (each id still missing), so nodes starting together on one store
        agree: the loser reloads and takes the winner's ids."""
        self._warming = self._prime()
        return self._warming

    def _prime(self) -> Iterator[None]:
        try:
            for attempt in range(3):
                if attempt:  # the ids read at start, then what the other node wrote
                    self.load_ids()
                batch: dict[str, tuple[int, VmIdentities | None]] = {}
                new_ids: dict[str, dict[str, str]] = {}  # by VM: the ids to write
                vms = list(self.inventory.vms.values())
                for start in range(0, len(vms), SLICE):
                    for vm in vms[start : start + SLICE]:
                        if self._memo.get(vm.id, (None,))[0] != vm.revision:
                            new_ids[vm.id] = {}
                            batch[vm.id] = (vm.revision, self._resolved(vm, new_ids[vm.id]))
                    yield
                # A request meanwhile stored ids of some of these VMs: theirs stand.
                for name, ids in list(new_ids.items()):
                    if any(key in self._ids for key in ids):
                        del batch[name], new_ids[name]
                pending = {key: value for ids in new_ids.values() for key, value in ids.items()}
                if pending and not self._written(pending):
                    continue  # another node wrote first: take its ids
                for name, entry in batch.items():
                    self._memo.setdefault(name, entry)  # a request's is as new or newer
                return
            raise StoreError("managed identities: the state store kept changing; start again")
        finally:
            self._warming = None

    def _written(self, pending: dict[str, str]) -> bool:
        """Write generated ids if none of them is stored yet; False if one is."""
        try:
            self.store.write_batch(
                [Put(KIND, key, value) for key, value in pending.items()],
                expect=[Expect(KIND, key, None) for key in pending],
            )
        except Conflict:
            return False
        self._ids.update(pending)
        return True

    def load_ids(self) -> None:
        """Read the stored ids; a damaged one is a CorruptRecord (at start: it stops the
        start rather than a token request later)."""
        ids = {}
        for key, value in self.store.list_records(KIND):
            ids[key] = _checked(key, value)
        self._ids = ids

    def identities(self, vm: VmSnapshot) -> VmIdentities | None:
        memo = self._memo.get(vm.id)
        if memo is not None and memo[0] == vm.revision:
            return memo[1]
        resolved = self._resolved(vm, None)
        self._memo[vm.id] = (vm.revision, resolved)
        return resolved

    def _resolved(self, vm: VmSnapshot, new_ids: dict[str, str] | None) -> VmIdentities | None:
        block = self.inventory.identities(vm.id)
        return None if block is None else self.resolve(vm, block, new_ids)

    def all(self) -> dict[str, VmIdentities | None]:
        """Every VM's identities (resolving, and so generating, what is missing)."""
        if self._warming is not None:  # the rest in one batch, not two writes per VM
            for _ in self._warming:
                pass
        return {name: self.identities(vm) for name, vm in self.inventory.vms.items()}

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

    def resolve(
        self, vm: VmSnapshot, block: Identities, new_ids: dict[str, str] | None = None
    ) -> VmIdentities:
        """A VM's identities from its `identities` block and its compute document (the
        snapshot's: resolving a fleet never decodes whole VM models). Ids missing from
        the store are written now, one by one, or when `new_ids` is given put there for
        the caller to write."""
        name = vm.name

        def generated(slot: str, field: str) -> str:
            return self._generated(f"{name}/{slot}/{field}", new_ids)

        compute = _Compute(vm.compute)
        tenant = block.tenantId or self.tenant
        system = None
        if block.systemAssigned is not None:
            given = block.systemAssigned
            system = ManagedIdentity(
                client_id=given.clientId or generated("system", "clientId"),
                object_id=given.objectId or generated("system", "objectId"),
                resource_id=compute.text("resourceId") or _vm_resource_id(name, compute),
                system=True,
            )
        users = []
        for index, user in enumerate(block.userAssigned):
            slot = f"user:{user.resourceId.lower()}" if user.resourceId else f"user#{index}"
            users.append(
                ManagedIdentity(
                    client_id=user.clientId or generated(slot, "clientId"),
                    object_id=user.objectId or generated(slot, "objectId"),
                    resource_id=user.resourceId or _user_resource_id(name, compute, index),
                )
            )
        return VmIdentities(tenant, system, tuple(users))

    def _generated(self, key: str, new_ids: dict[str, str] | None) -> str:
        known = self._ids.get(key)
        if known is not None:
            return known
        if new_ids is not None:  # the warm-up writes them together afterwards
            return new_ids.setdefault(key, self.new_guid())
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

"""The inventory kept in the state store, applied to the LiveInventory without a restart.

At start the store's VMs and the configuration's are merged (the configuration's win and
are written to the store); the built-in demo VM is used only when neither has any. Every
change is written to the store first, then applied, so a failed write changes nothing.
With a shared store, other nodes' changes arrive through `follow` (the store's change
log, store/follower.py) and are applied the same way. VMs move as record text
(inventory/records.py): what the store holds is served without being validated again.

The inventory's rules are the store's to decide, so two nodes writing at one moment
cannot both win (docs/fleet.md, consistency): every write of a VM releases and claims
its addresses (space `vm-address`) and its vmId (`vm-id`, lower-cased) in the same
batch, a delete releases them, and `If-None-Match: *` / `If-Match: *` are conditions of
the write itself. A refused write (Taken, Conflict) changed nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from openimds.config import ConfigError
from openimds.config.loading import demo_vm
from openimds.config.vm_model import VmSpec
from openimds.inventory import records
from openimds.inventory.live import InventoryError, LiveInventory, UnknownVm
from openimds.store import (
    PRESENT,
    Claim,
    Conflict,
    Delete,
    Expect,
    Op,
    Put,
    Release,
    Store,
    Taken,
)
from openimds.store.follower import Changes
from openimds.web.admin_errors import AdminError

log = logging.getLogger("openimds.fleet")

ADDRESSES = "vm-address"  # the claim space of VMs' source addresses
VM_IDS = "vm-id"  # ... and of their vmIds (lower-cased: GUIDs match in any case)
SPACES = {ADDRESSES: "address", VM_IDS: "vmId"}
BACKFILL_TRIES = 5


class Refused(AdminError, ValueError):
    """A VM write the store refused because another VM holds what it claims (409)."""

    status = 409


class PreconditionFailed(AdminError, ValueError):
    """If-Match / If-None-Match did not hold in the store (412) for the VM `name`."""

    status = 412

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name


def claims(name: str, text: str) -> dict[tuple[str, str], str]:
    """What a VM's record claims: (space, value) -> the VM's name."""
    data = records.raw(name, text)
    held = {(ADDRESSES, str(address)): name for address in data.get("addresses", ())}
    compute = data["instance"].get("compute")
    vm_id = str(compute.get("vmId", "")) if isinstance(compute, dict) else ""
    if vm_id:
        held[(VM_IDS, vm_id.lower())] = name
    return held


def claim_ops(name: str, text: str | None) -> list[Op]:
    """Give up what `name` held, then (unless it is deleted) claim what `text` lists."""
    ops: list[Op] = [Release(space, name) for space in SPACES]
    if text is not None:
        ops.extend(Claim(space, value, name) for (space, value) in claims(name, text))
    return ops


def _claimant(exc: Taken, texts: Mapping[str, str]) -> str:
    """Which VM of a refused batch claimed what another VM holds."""
    for name, text in texts.items():
        if (exc.space, exc.value) in claims(name, text):
            return name
    return ", ".join(texts)


def _claimant_of(exc: Taken, todo: Mapping[str, Mapping[tuple[str, str], str]]) -> str:
    for name, held in todo.items():
        if (exc.space, exc.value) in held:
            return name
    return "another VM"


def _holders_message(exc: Taken, name: str) -> str:
    what = SPACES.get(exc.space, exc.space)
    return f"{what} {exc.value} is held by VM {exc.holder}; VM {name} was not written"


class StoredInventory:
    def __init__(self, store: Store, live: LiveInventory) -> None:
        self.store = store
        self.live = live
        # The demo VM served while the inventory is empty: never stored, and gone as soon
        # as a real VM arrives (it has no addresses, so it could not share a inventory).
        self.placeholders: set[str] = set()

    def start(self, configured: Sequence[VmSpec], fallback: Sequence[VmSpec] = ()) -> None:
        """Load the store's VMs, write the configured ones over them, and serve the lot;
        `fallback` (the demo VM) only when neither names any VM."""
        stored = dict(self.store.list_records(records.KIND))
        # The configuration's VMs in its order, then those only the store has.
        merged = {spec.display_name: records.encode(spec) for spec in configured}
        changed = {name: text for name, text in merged.items() if stored.get(name) != text}
        for name, text in stored.items():
            merged.setdefault(name, text)
        if not merged:
            self.live.replace(fallback)
            self.placeholders = {spec.display_name for spec in fallback}
            return
        try:
            self.live.replace_texts(merged)  # checks the lot before anything is written
        except InventoryError as exc:
            raise InventoryError(f"{exc}; {FIX}") from None
        try:
            self._write(changed, ())
        except Refused as exc:
            raise InventoryError(f"{exc}; {FIX}") from None
        self._backfill()

    def _backfill(self) -> None:
        """Claims of VMs stored before the store kept them: taken at start, in one batch
        on the condition that those VMs' records are still as read (another node may be
        writing them meanwhile; then it is read again), so that a claim never follows a
        stale record. Every later write releases and claims in its own batch."""
        for _ in range(BACKFILL_TRIES):
            stored = dict(self.store.list_records(records.KIND))
            holding = {o for space in SPACES for o in self.store.holders(space).values()}
            todo = {
                name: held
                for name, text in stored.items()
                if name not in holding and (held := claims(name, text))
            }
            if not todo:
                return
            ops: list[Op] = [
                Claim(space, value, owner)
                for held in todo.values()
                for (space, value), owner in held.items()
            ]
            expect = [Expect(records.KIND, name, stored[name]) for name in todo]
            try:
                self.store.write_batch(ops, expect)
            except Conflict:
                continue
            except Taken as exc:
                raise InventoryError(
                    f"{SPACES.get(exc.space, exc.space)} {exc.value} is held by VM "
                    f"{exc.holder} in the state store and listed by {_claimant_of(exc, todo)}; "
                    f"{FIX}"
                ) from None
            log.info("inventory claims taken for %d VMs stored before claims", len(todo))
            return
        raise InventoryError("the VMs in the state store kept changing while claims were taken")

    def upsert(
        self, specs: Sequence[VmSpec], exists: bool | None = None, *, prune: bool = False
    ) -> list[str]:
        """Add or replace VMs by name (all or none); the names whose data changed.
        `exists` False: they must not be in the store yet; True: they must be there
        (decided by the store, in the write). Refused when another VM holds an address
        or a vmId they list; PreconditionFailed when `exists` did not hold. With
        `prune`, the VMs not in `specs` go too, in the same store batch (see `pruned`)."""
        texts = {spec.display_name: records.encode(spec) for spec in specs}
        conditions: list[Expect] = []
        if exists is None:
            changed = {n: t for n, t in texts.items() if self.live.texts.get(n) != t}
        else:
            value = PRESENT if exists else None
            conditions = [Expect(records.KIND, name, value) for name in texts]
            changed = dict(texts)  # written even if unchanged: the condition is checked
        gone = self.pruned(texts) if prune else []
        self._check_addressed(specs, gone)
        self._write(changed, gone, conditions)
        self._drop_placeholders(keep=set(texts))
        dropped = set(gone)
        return [name for name in self._apply(changed, gone) if name not in dropped]

    def pruned(self, kept: Mapping[str, object]) -> list[str]:
        """The stored VMs a prune to `kept` removes (the demo placeholder is not stored)."""
        return sorted(n for n in self.live.texts if n not in kept and n not in self.placeholders)

    def remove(self, names: Sequence[str], *, every: bool = False) -> list[str]:
        """Remove VMs by name in one store batch; the names that were there. `every`:
        each must be in the store (decided by the store, in the write), else UnknownVm
        and nothing is removed."""
        if not every:
            present = [name for name in dict.fromkeys(names) if name in self.live.texts]
            self._write({}, present)
            return self._apply({}, present)
        present = list(dict.fromkeys(names))
        # The demo VM served while the inventory is empty is never stored.
        stored = [name for name in present if name not in self.placeholders]
        try:
            self._write({}, stored, [Expect(records.KIND, name, PRESENT) for name in stored])
        except PreconditionFailed as exc:
            raise UnknownVm(f"{exc.name}; nothing removed") from None
        self._apply({}, present)
        return present  # each was in the store, which removed them all

    def follow(self, changes: Changes) -> None:
        """What the change log says changed of kind `vm` (None: anything): the values
        as they are at the log's head, applied as one consistent change."""
        if changes is None:
            self.reload()
            return
        removed = [name for name, text in changes.items() if text is None]
        texts = {name: text for name, text in changes.items() if text is not None}
        if texts:
            self._drop_placeholders(keep=set(texts))
        self._apply(texts, removed)

    def reload(self) -> None:
        """The store's whole inventory, as it is now."""
        self.live.replace_texts(dict(self.store.list_records(records.KIND)))
        self.placeholders = set()

    def _apply(self, texts: Mapping[str, str], removed: Sequence[str]) -> list[str]:
        """Bring the live copy in line with what the store now holds. The store decided
        the rules; a copy that disagrees is behind on other nodes' changes (which the
        follower brings), so it takes the store's whole inventory rather than refuse
        what is already written."""
        try:
            gone = self.live.remove(removed)
            return gone + self.live.put_texts(texts)
        except InventoryError:
            self.reload()
            return [*removed, *texts]

    def _check_addressed(self, specs: Sequence[VmSpec], gone: Sequence[str] = ()) -> None:
        """Each VM's own shape (rules between VMs are the store's to decide): with
        several VMs, each lists the addresses it calls from."""
        if not self.live.addresses_required:
            return
        dropped = {*self.placeholders, *gone}
        others = [name for name in self.live.vms if name not in dropped]
        if len({*others, *(spec.display_name for spec in specs)}) < 2:
            return
        missing = sorted(spec.display_name for spec in specs if not spec.addresses)
        missing += sorted(n for n in others if not self.live.vms[n].addresses)
        if missing:
            raise InventoryError(
                "with several VMs, every VM must list the `addresses` it calls from; "
                f"none for: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "")
            )

    def _drop_placeholders(self, keep: set[str]) -> None:
        """The first real VM replaces the demo VM (unless it is the demo VM, edited)."""
        if self.placeholders:
            self.live.remove([name for name in self.placeholders if name not in keep])
            self.placeholders = set()

    def _write(
        self, texts: Mapping[str, str], removed: Sequence[str], expect: Sequence[Expect] = ()
    ) -> None:
        """One batch: the records, with their claims released first and taken after, so
        VMs that swap addresses in one batch can."""
        ops: list[Op] = []
        claimed: list[Op] = []
        for name, text in texts.items():
            for op in claim_ops(name, text):
                (ops if isinstance(op, Release) else claimed).append(op)
        for name in removed:
            ops.extend(claim_ops(name, None))
        ops.extend(Put(records.KIND, name, text) for name, text in texts.items())
        ops.extend(Delete(records.KIND, name) for name in removed)
        ops.extend(claimed)
        if not texts and not removed:
            return
        try:
            self.store.write_batch(ops, expect)
        except Taken as exc:
            raise Refused(_holders_message(exc, _claimant(exc, texts))) from None
        except Conflict as exc:
            name = exc.expect.key
            if exc.expect.value is None:
                raise PreconditionFailed(f"VM {name} exists already", name) from None
            raise PreconditionFailed(f"no VM named {name}", name) from None


FIX = (
    "fix: give one of them other addresses (or another vmId) in the VM file (the "
    "configuration's VMs are written over the store's), or remove it through a node "
    "that still runs (`openimds vm remove NAME`)"
)


def start_inventory(store: Store, live: LiveInventory, vms: Sequence[VmSpec]) -> StoredInventory:
    """The VMs of the store and of the configuration (`vms`), served by `live`; the
    built-in demo VM when neither has any. ConfigError when they cannot be served."""
    stored = StoredInventory(store, live)
    demo = VmSpec.model_validate(demo_vm())
    # Without a VM file the built-in demo VM is served, unless the store holds VMs.
    configured = [] if list(vms) == [demo] else list(vms)
    try:
        stored.start(configured, fallback=[demo])
    except InventoryError as exc:
        raise ConfigError(f"the VMs of the configuration and the state store: {exc}") from None
    return stored

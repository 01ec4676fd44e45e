"""The live inventory: VM snapshots by name, and who is calling.

Readers (the metadata listener) get immutable snapshots. A change to one VM swaps in a
new snapshot of that VM with a new revision, which is what invalidates exactly that VM's
cached answers; the other VMs keep their revisions and their caches. Changes happen on
the event loop, so a reader never sees half of one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

from openimds.config.vm_model import VmSpec
from openimds.core.caller import CallerResolver
from openimds.core.inventory import VmSnapshot


class InventoryError(ValueError):
    """A change that would leave the inventory unservable; the message says why."""


def snapshot_of(spec: VmSpec, revision: int) -> VmSnapshot:
    lb = spec.loadbalancer
    return VmSnapshot(
        id=spec.display_name,
        name=spec.display_name,
        revision=revision,
        instance=spec.instance.model_dump(),
        loadbalancer=None if lb is None else lb.model_dump(exclude_none=True),
        addresses=tuple(str(a) for a in spec.addresses),
    )


def check_servable(specs: Mapping[str, VmSpec], addresses_required: bool = True) -> None:
    """Every request must resolve to one VM or none: with several VMs each lists the
    addresses it calls from (unless a signed proxy names every caller's VM), and no
    address belongs to two VMs."""
    if len(specs) > 1 and addresses_required:
        missing = sorted(name for name, spec in specs.items() if not spec.addresses)
        if missing:
            raise InventoryError(
                "with several VMs, every VM must list the `addresses` it calls from; "
                f"none for: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "")
            )
    owner: dict[str, str] = {}
    for name, spec in specs.items():
        for address in spec.addresses:
            other = owner.setdefault(str(address), name)
            if other != name:
                raise InventoryError(f"address {address} is listed by both {other} and {name}")


class Fleet:
    def __init__(self, specs: Iterable[VmSpec] = (), *, addresses_required: bool = True) -> None:
        # False when every caller comes through a signed proxy, which names the VM.
        self.addresses_required = addresses_required
        # One counter for every VM: a revision is never reused, even for a VM removed
        # and added again, so a cached answer can never match a newer VM.
        self._revisions = itertools.count(1)
        self.vms: dict[str, VmSnapshot] = {}
        self.specs: dict[str, VmSpec] = {}
        self.resolver = CallerResolver(())
        self.replace(specs)

    def replace(self, specs: Iterable[VmSpec]) -> None:
        """The whole inventory at once (at start, or after losing track of changes)."""
        new = {spec.display_name: spec for spec in specs}
        check_servable(new, self.addresses_required)
        self._install(new, {n: self._snapshot(s) for n, s in new.items()})

    def put(self, specs: Iterable[VmSpec]) -> list[str]:
        """Add or replace VMs by name; the names whose data changed."""
        new = dict(self.specs)
        changed = []
        for spec in specs:
            name = spec.display_name
            if new.get(name) != spec:
                changed.append(name)
            new[name] = spec
        if changed:
            check_servable(new, self.addresses_required)
            snapshots = dict(self.vms)
            snapshots.update({name: self._snapshot(new[name]) for name in changed})
            self._install(new, snapshots)
        return changed

    def remove(self, names: Iterable[str]) -> list[str]:
        """Drop VMs by name; the names that were there."""
        gone = [name for name in names if name in self.specs]
        if gone:
            new = {n: s for n, s in self.specs.items() if n not in gone}
            check_servable(new, self.addresses_required)
            self._install(new, {n: v for n, v in self.vms.items() if n not in gone})
        return gone

    def for_peer(self, peer: str) -> VmSnapshot | None:
        vm_id = self.resolver.resolve(peer)
        return None if vm_id is None else self.vms.get(vm_id)

    def for_name(self, key: str) -> VmSnapshot | None:
        """The VM a signed proxy names, by name or vmId."""
        vm_id = self.resolver.named(key)
        return None if vm_id is None else self.vms.get(vm_id)

    def _snapshot(self, spec: VmSpec) -> VmSnapshot:
        return snapshot_of(spec, next(self._revisions))

    def _install(self, specs: dict[str, VmSpec], vms: dict[str, VmSnapshot]) -> None:
        # Three plain assignments: a reader on the loop runs between changes, never
        # during one.
        self.specs = specs
        self.vms = vms
        self.resolver = CallerResolver(vms.values())

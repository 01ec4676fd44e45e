"""The live inventory: VM snapshots by name, and who is calling.

Readers (the metadata listener) get immutable snapshots. A change to one VM swaps in a
new snapshot of that VM with a new revision, which is what invalidates exactly that VM's
cached answers; the other VMs keep their revisions and their caches. Changes happen on
the event loop, so a reader never sees half of one.

Per VM the fleet keeps the snapshot and the VM's record text (inventory/records.py), not its
validated model: a model is several times the size of both, and few requests need one.
`specs` decodes a VM's model on demand and keeps the most recently used ones.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from openimds.config.identity_model import Identities
from openimds.config.vm_model import VmSpec
from openimds.core.caller import CallerResolver
from openimds.core.vm import VmSnapshot
from openimds.inventory import records

SPEC_CACHE = 256  # decoded models kept for the features that ask for them


class InventoryError(ValueError):
    """A change that would leave the inventory unservable; the message says why."""


class UnknownVm(LookupError):
    """No VM has this name (a 404 on every admin route that names one)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no VM named {self.name}"


class Interner:
    """Shares equal parts of VMs' documents. Much of a VM's instance document is what
    every VM of a fleet has (empty profiles, the same image, plan, security profile), so
    one copy of each distinct part serves them all. The parts are the containers one
    level below `compute` and `network`, recognised by their JSON text: a C-speed
    comparison, where walking every node in Python would cost more than it saves.
    Snapshots are never changed in place, which is what makes sharing safe. One interner
    per batch of VMs read (the whole fleet at start): its pool goes with it."""

    def __init__(self) -> None:
        self._pool: dict[bytes, Any] = {}

    def share(self, instance: dict[str, Any]) -> dict[str, Any]:
        pool = self._pool
        for section in instance.values():
            if type(section) is dict:  # parsed JSON: exact types, checked cheaply
                for key, value in section.items():
                    if value and type(value) in _CONTAINERS:
                        section[key] = pool.setdefault(orjson.dumps(value), value)
        return instance


_CONTAINERS = (dict, list)


def snapshot_of(
    name: str, data: Mapping[str, Any], revision: int, interner: Interner | None = None
) -> VmSnapshot:
    instance = data["instance"] if interner is None else interner.share(data["instance"])
    return VmSnapshot(
        id=name,
        name=name,
        revision=revision,
        instance=instance,
        loadbalancer=data.get("loadbalancer"),
        addresses=tuple(str(a) for a in data.get("addresses", ())),
    )


def spec_snapshot(spec: VmSpec, revision: int) -> VmSnapshot:
    """The snapshot of a validated VM, as the fleet would serve it."""
    name = spec.display_name
    return snapshot_of(name, records.raw(name, records.encode(spec)), revision)


def check_servable(
    addresses: Mapping[str, tuple[str, ...]], addresses_required: bool = True
) -> None:
    """Every request must resolve to one VM or none: with several VMs each lists the
    addresses it calls from (unless a signed proxy names every caller's VM), and no
    address belongs to two VMs."""
    if len(addresses) > 1 and addresses_required:
        missing = sorted(name for name, listed in addresses.items() if not listed)
        if missing:
            raise InventoryError(
                "with several VMs, every VM must list the `addresses` it calls from; "
                f"none for: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "")
            )
    owner: dict[str, str] = {}
    for name, listed in addresses.items():
        for address in listed:
            other = owner.setdefault(address, name)
            if other != name:
                raise InventoryError(f"address {address} is listed by both {other} and {name}")


class Specs(Mapping[str, VmSpec]):
    """The VMs' models, decoded from their records when asked for."""

    def __init__(
        self, texts: Mapping[str, str], decoded: OrderedDict[str, tuple[str, VmSpec]]
    ) -> None:
        self._texts = texts
        self._decoded = decoded  # shared across changes: an entry is valid for its text

    def __getitem__(self, name: str) -> VmSpec:
        text = self._texts[name]
        hit = self._decoded.get(name)
        if hit is not None and hit[0] is text:
            self._decoded.move_to_end(name)
            return hit[1]
        spec = records.decode(name, text)
        self._decoded[name] = (text, spec)
        if len(self._decoded) > SPEC_CACHE:
            self._decoded.popitem(last=False)
        return spec

    def __iter__(self) -> Iterator[str]:
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)


class LiveInventory:
    def __init__(self, specs: Iterable[VmSpec] = (), *, addresses_required: bool = True) -> None:
        # False when every caller comes through a signed proxy, which names the VM.
        self.addresses_required = addresses_required
        # One counter for every VM: a revision is never reused, even for a VM removed
        # and added again, so a cached answer can never match a newer VM.
        self._revisions = itertools.count(1)
        self.texts: dict[str, str] = {}
        self.vms: dict[str, VmSnapshot] = {}
        # Each VM's `identities` block as plain data, kept from when its record was read,
        # so resolving a fleet's identities parses no record twice.
        self._identity_blocks: dict[str, Any] = {}
        self.resolver = CallerResolver(())
        self._decoded: OrderedDict[str, tuple[str, VmSpec]] = OrderedDict()
        self.specs = Specs(self.texts, self._decoded)
        self.replace(specs)

    # -- changes from validated models (configuration, admin API) ------------------------
    def replace(self, specs: Iterable[VmSpec]) -> None:
        """The whole inventory at once (at start, or after losing track of changes)."""
        self.replace_texts({spec.display_name: records.encode(spec) for spec in specs})

    def put(self, specs: Iterable[VmSpec]) -> list[str]:
        """Add or replace VMs by name; the names whose data changed."""
        return self.put_texts({spec.display_name: records.encode(spec) for spec in specs})

    # -- changes from records (the store) -----------------------------------------------------
    def replace_texts(self, texts: Mapping[str, str]) -> None:
        data = {name: records.raw(name, text) for name, text in texts.items()}
        check_servable({name: _addresses(d) for name, d in data.items()}, self.addresses_required)
        interner = Interner()
        vms = {name: self._snapshot(name, d, interner) for name, d in data.items()}
        self._identity_blocks = {name: d.get("identities") for name, d in data.items()}
        self._install(dict(texts), vms)

    def put_texts(self, texts: Mapping[str, str]) -> list[str]:
        changed = {name: text for name, text in texts.items() if self.texts.get(name) != text}
        if not changed:
            return []
        data = {name: records.raw(name, text) for name, text in changed.items()}
        addresses = {name: vm.addresses for name, vm in self.vms.items()}
        addresses.update({name: _addresses(d) for name, d in data.items()})
        check_servable(addresses, self.addresses_required)
        vms = dict(self.vms)
        interner = Interner()
        vms.update({name: self._snapshot(name, d, interner) for name, d in data.items()})
        self._identity_blocks.update({n: d.get("identities") for n, d in data.items()})
        self._install({**self.texts, **changed}, vms)
        return list(changed)

    def remove(self, names: Iterable[str]) -> list[str]:
        """Drop VMs by name; the names that were there."""
        gone = [name for name in names if name in self.texts]
        if gone:
            kept = {n: v for n, v in self.vms.items() if n not in gone}
            check_servable(
                {name: vm.addresses for name, vm in kept.items()}, self.addresses_required
            )
            for name in gone:
                self._identity_blocks.pop(name, None)
            self._install({n: t for n, t in self.texts.items() if n not in gone}, kept)
        return gone

    # -- reading --------------------------------------------------------------------------------
    def for_peer(self, peer: str) -> VmSnapshot | None:
        vm_id = self.resolver.resolve(peer)
        return None if vm_id is None else self.vms.get(vm_id)

    def for_name(self, key: str) -> VmSnapshot | None:
        """The VM a signed proxy names, by name or vmId."""
        vm_id = self.resolver.named(key)
        return None if vm_id is None else self.vms.get(vm_id)

    def snapshot(self, name: str) -> VmSnapshot:
        """The VM of this name, as served; UnknownVm when there is none."""
        vm = self.vms.get(name)
        if vm is None:
            raise UnknownVm(name)
        return vm

    def identities(self, name: str) -> Identities | None:
        """A VM's identities block, without decoding the whole VM."""
        block = self._identity_blocks.get(name)
        return None if block is None else records.identities_of(name, block)

    def view(self, name: str) -> dict[str, Any]:
        """A VM as a VM file gives it, for people (admin answers, export)."""
        return records.readable(records.raw(name, self.texts[name]))

    def _snapshot(self, name: str, data: Mapping[str, Any], interner: Interner) -> VmSnapshot:
        return snapshot_of(name, data, next(self._revisions), interner)

    def _install(self, texts: dict[str, str], vms: dict[str, VmSnapshot]) -> None:
        # Plain assignments: a reader on the loop runs between changes, never during one.
        self.texts = texts
        self.specs = Specs(texts, self._decoded)
        self.vms = vms
        self.resolver = CallerResolver(vms.values())


def _addresses(data: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(a) for a in data.get("addresses", ()))

"""Which VM is asking: maps a request's source to a VM id (docs/architecture.md, caller resolution).

One VM: every caller is that VM. Several: each VM lists the addresses it calls from; a
source no VM lists is an unknown caller. Behind a signed edge proxy the proxy names the
VM (core/signed_caller.py), by name or by vmId.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from openimds.core.vm import VmSnapshot


class Callers(Protocol):
    """Who is calling a listener: the VM a peer address speaks for, or None. The metadata
    listener asks the fleet; a token source's listener always speaks for one VM."""

    def for_peer(self, peer: str) -> VmSnapshot | None: ...


class SignedCallers(Protocol):
    """Who is calling the metadata listener behind a signed edge proxy
    (core/signed_caller.py): `headers` are the proxy headers' lower-case names, the
    only ones the listener gathers; `trusts` is asked once per connection."""

    headers: frozenset[bytes]

    def trusts(self, peer: str) -> bool: ...

    def resolve(
        self,
        peer: str,
        trusted: bool,
        headers: Sequence[tuple[bytes, bytes]] | None,
        now: float,
    ) -> VmSnapshot | None:
        """The caller's VM, or None (unknown); raises ProxyRefused."""
        ...


class CallerResolver:
    def __init__(self, vms: Iterable[VmSnapshot]) -> None:
        vm_list = list(vms)
        self._only = vm_list[0].id if len(vm_list) == 1 and not vm_list[0].addresses else None
        self._by_address = {addr: vm.id for vm in vm_list for addr in vm.addresses}
        self._by_name = {vm.name: vm.id for vm in vm_list}
        # vmIds are GUIDs, matched in any case.
        self._by_vm_id = {str(vm.compute.get("vmId", "")).lower(): vm.id for vm in vm_list}
        self._by_vm_id.pop("", None)

    def resolve(self, peer: str) -> str | None:
        """The VM id for a peer address, or None when no VM claims it."""
        if self._only is not None:
            return self._only
        return self._by_address.get(_strip_mapped(peer))

    def named(self, key: str) -> str | None:
        """The VM id for a VM's name or vmId (what a signed proxy names), or None."""
        # A name wins over another VM's vmId.
        found = self._by_name.get(key)
        return found if found is not None else self._by_vm_id.get(key.lower())


def _strip_mapped(address: str) -> str:
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
    return address[7:] if address.startswith("::ffff:") else address

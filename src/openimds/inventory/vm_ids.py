"""vmIds for VMs whose file gives none, generated once and kept in the state store.

As managed identities' ids are (identity/directory.py): stored under the kind `vm_id` by
VM name, written with a condition (each id still missing) so nodes starting or adding a
VM together on one store agree on the first writer's id, and never generated again for
that name, also after a restart or a change to the VM. A VM removed keeps its id for when
it comes back, as its identities' ids do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection

from openimds.store import Conflict, Expect, Put, Store, StoreError

KIND = "vm_id"
_ATTEMPTS = 3


class VmIds:
    def __init__(self, store: Store, new_guid: Callable[[], str] | None = None) -> None:
        self.store = store
        self.new_guid = new_guid or (lambda: str(uuid.uuid4()))
        self._ids: dict[str, str] | None = None  # read on first use

    def load(self) -> None:
        self._ids = dict(self.store.list_records(KIND))

    def ids_for(self, names: Collection[str]) -> dict[str, str]:
        """The vmId of each VM named, generating (in one conditional batch) the missing
        ones; another node's ids win over ours."""
        for _ in range(_ATTEMPTS):
            if self._ids is None:
                self.load()
            known = self._ids or {}
            missing = {name: self.new_guid() for name in names if name not in known}
            if not missing:
                return {name: known[name] for name in names}
            try:
                self.store.write_batch(
                    [Put(KIND, name, value) for name, value in missing.items()],
                    expect=[Expect(KIND, name, None) for name in missing],
                )
            except Conflict:
                self._ids = None  # another node wrote first: read its ids
                continue
            known.update(missing)
            self._ids = known
        raise StoreError("vmIds: the state store kept changing; try again")

"""The reference backend: plain dictionaries, nothing kept across restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from openimds.store.base import (
    LOG_RETENTION,
    SETTINGS_KIND,
    ChangeSet,
    Claim,
    Conflict,
    Delete,
    Expect,
    Op,
    Put,
    Release,
    Taken,
    check_batch,
    check_text,
    logged,
)


class MemoryStore:
    def __init__(self) -> None:
        self._settings: dict[str, str] = {}
        self._records: dict[str, dict[str, str]] = {}
        self._claims: dict[str, dict[str, str]] = {}  # space -> value -> owner
        # The change log: (position, kind, key, when); `_pruned` the newest position
        # dropped from it.
        self._log: list[tuple[int, str, str, float]] = []
        self._head = 0
        self._pruned = 0
        # Threads share one store in tests: a batch is applied whole, never interleaved.
        self._lock = threading.RLock()

    def get_setting(self, key: str) -> str | None:
        return self._settings.get(key)

    def put_setting(self, key: str, value: str) -> None:
        check_text(key=key, value=value)
        with self._lock:
            self._settings[key] = value
            self._append([(SETTINGS_KIND, key)])

    def put_setting_once(self, key: str, value: str) -> str:
        check_text(key=key, value=value)
        with self._lock:
            if key not in self._settings:
                self._settings[key] = value
                self._append([(SETTINGS_KIND, key)])
            return self._settings[key]

    def get_record(self, kind: str, key: str) -> str | None:
        return self._records.get(kind, {}).get(key)

    def list_records(self, kind: str) -> list[tuple[str, str]]:
        return sorted(self._records.get(kind, {}).items())

    def put_record(self, kind: str, key: str, value: str) -> None:
        self.write_batch([Put(kind, key, value)])

    def put_record_once(self, kind: str, key: str, value: str) -> str:
        check_text(kind=kind, key=key, value=value)
        with self._lock:
            if self.get_record(kind, key) is None:
                self.write_batch([Put(kind, key, value)])
            return self._records[kind][key]

    def delete_record(self, kind: str, key: str) -> None:
        self.write_batch([Delete(kind, key)])

    def write_batch(self, ops: Sequence[Op], expect: Sequence[Expect] = ()) -> None:
        check_batch(ops, expect)
        with self._lock:
            for condition in expect:  # read directly: a condition is part of the write
                stored = self._records.get(condition.kind, {}).get(condition.key)
                if not condition.holds(stored):
                    raise Conflict(condition)
            claims = {space: dict(held) for space, held in self._claims.items()}
            for op in ops:  # claims first, on a copy: all or nothing
                if isinstance(op, Release):
                    held = claims.get(op.space, {})
                    for value in [v for v, owner in held.items() if owner == op.owner]:
                        del held[value]
                elif isinstance(op, Claim):
                    holder = claims.setdefault(op.space, {}).setdefault(op.value, op.owner)
                    if holder != op.owner:
                        raise Taken(op.space, op.value, holder)
            self._claims = claims
            for op in ops:
                if isinstance(op, Put):
                    self._records.setdefault(op.kind, {})[op.key] = op.value
                elif isinstance(op, Delete):
                    self._records.get(op.kind, {}).pop(op.key, None)
            self._append(logged(ops))

    def holders(self, space: str) -> dict[str, str]:
        return dict(self._claims.get(space, {}))

    def log_head(self) -> int:
        return self._head

    def read_changes(self, since: int) -> ChangeSet:
        with self._lock:
            if since < self._pruned:
                return ChangeSet(self._head, False, {})
            values: dict[tuple[str, str], str | None] = {}
            for position, kind, key, _ in self._log:
                if position > since:
                    values[(kind, key)] = self._value(kind, key)
            return ChangeSet(self._head, True, values)

    def prune_log(self, older_than: float = LOG_RETENTION) -> None:
        with self._lock:
            cutoff = time.time() - older_than
            while len(self._log) > 1 and self._log[0][3] < cutoff:
                self._pruned = self._log.pop(0)[0]

    def watch(self, on_change: Callable[[int, str, str], None]) -> None:
        """One process owns this store: every change is its own, none to report."""

    def close(self) -> None:
        """Nothing to release."""

    def _value(self, kind: str, key: str) -> str | None:
        if kind == SETTINGS_KIND:
            return self._settings.get(key)
        return self.get_record(kind, key)

    def _append(self, changed: list[tuple[str, str]]) -> None:
        now = time.time()
        for kind, key in changed:
            self._head += 1
            self._log.append((self._head, kind, key, now))

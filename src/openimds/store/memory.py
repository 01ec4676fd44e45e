"""The reference backend: plain dictionaries, nothing kept across restarts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from openimds.store.base import Conflict, Delete, Expect, Put, check_batch, check_text


class MemoryStore:
    def __init__(self) -> None:
        self._settings: dict[str, str] = {}
        self._records: dict[str, dict[str, str]] = {}

    def get_setting(self, key: str) -> str | None:
        return self._settings.get(key)

    def put_setting(self, key: str, value: str) -> None:
        check_text(key=key, value=value)
        self._settings[key] = value

    def put_setting_once(self, key: str, value: str) -> str:
        check_text(key=key, value=value)
        return self._settings.setdefault(key, value)

    def get_record(self, kind: str, key: str) -> str | None:
        return self._records.get(kind, {}).get(key)

    def list_records(self, kind: str) -> list[tuple[str, str]]:
        return sorted(self._records.get(kind, {}).items())

    def put_record(self, kind: str, key: str, value: str) -> None:
        check_text(kind=kind, key=key, value=value)
        self._records.setdefault(kind, {})[key] = value

    def put_record_once(self, kind: str, key: str, value: str) -> str:
        check_text(kind=kind, key=key, value=value)
        return self._records.setdefault(kind, {}).setdefault(key, value)

    def delete_record(self, kind: str, key: str) -> None:
        self._records.get(kind, {}).pop(key, None)

    def write_batch(self, ops: Sequence[Put | Delete], expect: Sequence[Expect] = ()) -> None:
        check_batch(ops, expect)  # all or nothing: nothing below can fail once this passed
        for condition in expect:
            if self._records.get(condition.kind, {}).get(condition.key) != condition.value:
                raise Conflict(condition)
        for op in ops:
            if isinstance(op, Put):
                self.put_record(op.kind, op.key, op.value)
            else:
                self.delete_record(op.kind, op.key)

    def watch(self, on_change: Callable[[str, str], None]) -> None:
        """One process owns this store: every change is its own, none to report."""

    def close(self) -> None:
        """Nothing to release."""

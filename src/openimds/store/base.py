"""The store interface every backend implements, and how a backend is chosen."""

from __future__ import annotations

from typing import Protocol


class StoreError(Exception):
    """A backend failure, translated at the store boundary (DESIGN.md: errors)."""


class Store(Protocol):
    """Durable key-value settings; later issues add tables of their own.

    `put_setting_once` is how generated secrets are kept: the first writer wins, so two
    processes starting on one database agree on the same value.
    """

    def get_setting(self, key: str) -> str | None: ...

    def put_setting(self, key: str, value: str) -> None: ...

    def put_setting_once(self, key: str, value: str) -> str: ...

    def close(self) -> None: ...


def open_store(path: str) -> Store:
    """`:memory:` keeps nothing across restarts (tests); anything else is a SQLite file."""
    if path == ":memory:":
        from openimds.store.memory import MemoryStore

        return MemoryStore()
    from openimds.store.sqlite import SqliteStore

    return SqliteStore(path)

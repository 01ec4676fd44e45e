"""State that must survive a restart: admin token, keys, events. One interface, many backends.

A backend is chosen by the state URL: `memory:` keeps nothing (tests, throwaway runs;
`:memory:` is the same), `sqlite:///abs/path` or a plain file path (anything without
`scheme://`) is the embedded SQLite store, `postgresql://user@host:port/db` (or
`postgres://`) the shared PostgreSQL store that several nodes use at once. Any other
`scheme://` is refused. A new backend is one module and one entry in `BACKENDS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol, TypeVar

from openimds.store.base import (
    PRESENT,
    Change,
    ChangeSet,
    Claim,
    Conflict,
    CorruptRecord,
    Delete,
    Expect,
    Op,
    Put,
    Release,
    Store,
    StoreError,
    StoreInUse,
    Taken,
    decoding,
)

__all__ = [
    "BACKENDS",
    "PRESENT",
    "Change",
    "ChangeSet",
    "Claim",
    "Conflict",
    "CorruptRecord",
    "Delete",
    "Expect",
    "Op",
    "Put",
    "Release",
    "Store",
    "StoreError",
    "StoreInUse",
    "Taken",
    "backend_of",
    "check_url",
    "decoding",
    "is_shared",
    "open_store",
    "read_from",
]


T = TypeVar("T")


class Opener(Protocol):
    def __call__(self, location: str, *, readonly: bool, exclusive: bool) -> Store: ...


def _memory(location: str, *, readonly: bool, exclusive: bool) -> Store:
    from openimds.store.memory import MemoryStore

    return MemoryStore()


def _sqlite(location: str, *, readonly: bool, exclusive: bool) -> Store:
    from openimds.store.sqlite import SqliteStore

    return SqliteStore(location, readonly=readonly, exclusive=exclusive)


def _postgres(location: str, *, readonly: bool, exclusive: bool) -> Store:
    # Shared by design: several nodes use one database, so `exclusive` claims nothing.
    from openimds.store.postgres import PostgresStore

    return PostgresStore(location, readonly=readonly)


# Scheme -> opener. Imported lazily: a CLI command that reads one setting does not load
# drivers it will not use.
BACKENDS: dict[str, Opener] = {"memory": _memory, "sqlite": _sqlite, "postgresql": _postgres}
_ALIASES = {"postgres": "postgresql"}


# `scheme://` (RFC 3986's scheme characters): a URL, never a file path, so a misspelled
# scheme is refused instead of becoming a SQLite file named after it.
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def backend_of(url: str) -> tuple[str, str]:
    """(scheme, location) of a state URL; a bare path (no `scheme://`) is a SQLite file."""
    if url in ("memory:", ":memory:"):
        return "memory", ""
    named = _URL.match(url)
    if named and _ALIASES.get(named[1], named[1]) not in BACKENDS.keys() - {"memory"}:
        raise StoreError(
            f"unknown state URL scheme {named[1]!r}: give memory:, sqlite:///path, "
            "postgresql://user@host/db or a file path"
        )
    scheme, sep, rest = url.partition(":")
    scheme = _ALIASES.get(scheme, scheme)
    if scheme == "postgresql":
        return scheme, url  # libpq reads the URL itself
    if sep and scheme in BACKENDS and scheme != "memory":
        if rest.startswith("///"):
            return scheme, rest[2:]
        if rest.startswith("//"):
            raise StoreError(f"{url}: write {scheme}:///absolute/path (three slashes)")
        return scheme, rest
    if not url:
        raise StoreError("the state path is empty: give a file path, sqlite:///path or memory:")
    return "sqlite", url


def open_store(url: str, *, readonly: bool = False, exclusive: bool = False) -> Store:
    """Open the backend a state URL names. `readonly` never creates anything: a missing
    database is a StoreError (the CLI reads the admin token this way). `exclusive` is
    for a server: a backend that cannot be shared by two servers (SQLite) is claimed for
    this process, and one another server holds is refused with StoreInUse."""
    scheme, location = backend_of(url)
    return BACKENDS[scheme](location, readonly=readonly, exclusive=exclusive)


def check_url(url: str) -> None:
    """What a server's `open_store(url)` needs, checked without creating anything (for
    `config check`): a StoreError says what is wrong."""
    scheme, location = backend_of(url)
    if scheme == "sqlite":
        from openimds.store.sqlite import check_location

        check_location(location)


def read_from(url: str, read: Callable[[Store], T]) -> T:
    """What `read` takes from the store a state URL names, opened read-only and closed
    again: how commands read what a running server keeps (its generated admin token, its
    admin certificate) without ever creating a store. StoreError says why not."""
    if is_memory(url):
        raise StoreError("the state store is memory: (a running server's is not readable)")
    store = open_store(url, readonly=True)
    try:
        return read(store)
    finally:
        store.close()


def is_shared(url: str) -> bool:
    """Several nodes may use this store at once (it has a change feed)."""
    return backend_of(url)[0] == "postgresql"


def is_memory(url: str) -> bool:
    return url in ("memory:", ":memory:")

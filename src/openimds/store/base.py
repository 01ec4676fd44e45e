"""The store interface every backend implements, and how a backend is chosen.

Two shapes of data cover every feature: settings (one value per key: the admin token,
counters) and records (values grouped by kind: signing keys, CA material, scheduled
events, approvals). Features serialise their own values (JSON); the store only keeps
them durably. `write_batch` is atomic, so a change that touches several records (an
approval and the document incarnation) is all there after a crash, or not at all.

Which backend serves a state URL is decided in the package face (`store/__init__.py`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("openimds.store")


class StoreError(Exception):
    """A backend failure, translated at the store boundary (docs/architecture.md: errors)."""


class StoreInUse(StoreError):
    """Another server holds the store; two writers would undo each other's changes."""


class OutageLog:
    """One line when a backend starts failing and one when it works again, however many
    requests meet the failure in between (each of them is answered 503 on its own)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failing = False
        self._lock = threading.Lock()

    def failed(self, problem: object) -> None:
        with self._lock:
            if self.failing:
                return
            self.failing = True
        log.error(
            "%s is failing (%s): changes are refused with 503 until it recovers; "
            "the metadata API keeps answering",
            self.what,
            problem,
        )

    def succeeded(self) -> None:
        if not self.failing:  # the common case: one attribute read, no lock
            return
        with self._lock:
            if not self.failing:
                return
            self.failing = False
        log.warning("%s works again: changes are accepted", self.what)


class CorruptRecord(StoreError):
    """A stored value its feature cannot decode (edited by hand, or damaged), named by
    kind and key so it can be found, fixed or deleted."""

    def __init__(self, kind: str, key: str, what: str) -> None:
        super().__init__(f"corrupt {kind} record {key}: {what}")
        self.kind = kind
        self.key = key
        self.what = what


@contextmanager
def decoding(kind: str, key: str) -> Iterator[None]:
    """Where a feature decodes one stored value: whatever the value makes the decoder
    raise becomes one CorruptRecord, at the store boundary."""
    try:
        yield
    except json.JSONDecodeError as exc:
        raise CorruptRecord(kind, key, f"not valid JSON ({exc})") from exc
    except KeyError as exc:
        raise CorruptRecord(kind, key, f"no field {exc}") from exc
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise CorruptRecord(kind, key, str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Put:
    kind: str
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Delete:
    kind: str
    key: str


@dataclass(frozen=True, slots=True)
class Expect:
    """A condition of a batch: the record holds `value` (None: there is no such record)."""

    kind: str
    key: str
    value: str | None


class Conflict(StoreError):
    """A batch's condition did not hold: another writer changed the record first. Nothing
    of the batch was applied; re-read and try again."""

    def __init__(self, expect: Expect) -> None:
        super().__init__(f"record {expect.kind}/{expect.key} changed meanwhile")
        self.expect = expect


def check_text(**fields: object) -> None:
    """Keys and values are text (features serialise their own JSON); anything else is a
    programming error reported as a StoreError before any change is made."""
    for name, value in fields.items():
        if not isinstance(value, str):
            raise StoreError(f"the store keeps text; {name} is {type(value).__name__}")


def check_batch(ops: Sequence[Put | Delete], expect: Sequence[Expect] = ()) -> None:
    # The common case tested inline: a fleet's start checks tens of thousands of records.
    for condition in expect:
        if not (_texts(condition.kind, condition.key) and _text_or_none(condition.value)):
            check_text(kind=condition.kind, key=condition.key)
            check_text(value=condition.value)
    for op in ops:
        if isinstance(op, Put):
            if not (_texts(op.kind, op.key) and isinstance(op.value, str)):
                check_text(kind=op.kind, key=op.key, value=op.value)
        elif isinstance(op, Delete):
            check_text(kind=op.kind, key=op.key)
        else:
            raise StoreError(f"not a store operation: {type(op).__name__}")


def _texts(kind: object, key: object) -> bool:
    return isinstance(kind, str) and isinstance(key, str)


def _text_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


class Store(Protocol):
    def get_setting(self, key: str) -> str | None: ...

    def put_setting(self, key: str, value: str) -> None: ...

    def put_setting_once(self, key: str, value: str) -> str:
        """Store `value` unless the key exists; return what is stored. The first writer
        wins, so two processes on one database agree on a generated secret."""
        ...

    def get_record(self, kind: str, key: str) -> str | None: ...

    def list_records(self, kind: str) -> list[tuple[str, str]]:
        """All (key, value) of a kind, ordered by key."""
        ...

    def put_record(self, kind: str, key: str, value: str) -> None: ...

    def put_record_once(self, kind: str, key: str, value: str) -> str: ...

    def delete_record(self, kind: str, key: str) -> None: ...

    def write_batch(self, ops: Sequence[Put | Delete], expect: Sequence[Expect] = ()) -> None:
        """Apply all operations atomically and durably, if every condition in `expect`
        holds at that moment (else Conflict, and nothing is applied): the compare-and-set
        that lets several nodes share state without a lost update."""
        ...

    def watch(self, on_change: Callable[[str, str], None]) -> None:
        """Call `on_change(kind, key)` for changes other processes commit. Backends that
        one process owns alone (memory, SQLite) have none to report and never call it."""
        ...

    def close(self) -> None: ...

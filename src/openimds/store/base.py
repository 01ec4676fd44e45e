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
class Claim:
    """A batch claims `value` in `space` for `owner` (a VM's address or vmId): the store
    refuses the whole batch (Taken) when another owner holds it, deciding it in the
    write itself, so two nodes claiming one address at one moment cannot both win.
    Claiming what the owner already holds changes nothing."""

    space: str
    value: str
    owner: str


@dataclass(frozen=True, slots=True)
class Release:
    """A batch gives up everything `owner` holds in `space` (before it claims anew)."""

    space: str
    owner: str


Op = Put | Delete | Claim | Release


class Present:
    """The value of an Expect that holds for any value, as long as the record exists
    (one instance, PRESENT, compared by identity)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "PRESENT"


PRESENT = Present()


@dataclass(frozen=True, slots=True)
class Expect:
    """A condition of a batch: the record holds `value` (None: there is no such record;
    PRESENT: there is one, whatever it holds)."""

    kind: str
    key: str
    value: str | Present | None

    def holds(self, stored: str | None) -> bool:
        if self.value is PRESENT:
            return stored is not None
        return stored == self.value


class Conflict(StoreError):
    """A batch's condition did not hold: another writer changed the record first. Nothing
    of the batch was applied; re-read and try again."""

    def __init__(self, expect: Expect) -> None:
        super().__init__(f"record {expect.kind}/{expect.key} changed meanwhile")
        self.expect = expect


class Taken(StoreError):
    """A batch claimed what another owner holds (Claim). Nothing of it was applied."""

    def __init__(self, space: str, value: str, holder: str) -> None:
        super().__init__(f"{space} {value} is held by {holder}")
        self.space = space
        self.value = value
        self.holder = holder


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change in the store's log: its position (1, 2, ... in commit
    order, never reused) and what changed (a record's kind and key; settings are
    kind `setting`)."""

    position: int
    kind: str
    key: str


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What changed after a position, read in one snapshot with the records' values as
    they are at `head`: applying `values` brings a copy that was current at the asked
    position to exactly the store's state at `head`. `complete` is False when the log no
    longer reaches back that far (pruned): the reader reloads everything instead."""

    head: int
    complete: bool
    # (kind, key) -> the record's value at `head` (None: deleted); settings under
    # kind `setting`.
    values: dict[tuple[str, str], str | None]


SETTINGS_KIND = "setting"  # the kind a changed setting is logged under
LOG_RETENTION = 3600.0  # seconds a change stays in the log (docs/fleet.md)


def check_claims(ops: Sequence[Op]) -> None:
    for op in ops:
        if isinstance(op, Claim):
            check_text(space=op.space, value=op.value, owner=op.owner)
        elif isinstance(op, Release):
            check_text(space=op.space, owner=op.owner)


def check_text(**fields: object) -> None:
    """Keys and values are text (features serialise their own JSON); anything else is a
    programming error reported as a StoreError before any change is made."""
    for name, value in fields.items():
        if not isinstance(value, str):
            raise StoreError(f"the store keeps text; {name} is {type(value).__name__}")


def check_batch(ops: Sequence[Op], expect: Sequence[Expect] = ()) -> None:
    # The common case tested inline: a fleet's start checks tens of thousands of records.
    for condition in expect:
        if not (_texts(condition.kind, condition.key) and _expected(condition.value)):
            check_text(kind=condition.kind, key=condition.key)
            check_text(value=condition.value)
    for op in ops:
        if isinstance(op, Put):
            if not (_texts(op.kind, op.key) and isinstance(op.value, str)):
                check_text(kind=op.kind, key=op.key, value=op.value)
        elif isinstance(op, Delete):
            check_text(kind=op.kind, key=op.key)
        elif isinstance(op, (Claim, Release)):
            check_claims((op,))
        else:
            raise StoreError(f"not a store operation: {type(op).__name__}")


def logged(ops: Sequence[Op]) -> list[tuple[str, str]]:
    """The (kind, key) a batch's record operations change, for the change log."""
    return [(op.kind, op.key) for op in ops if isinstance(op, (Put, Delete))]


def _texts(kind: object, key: object) -> bool:
    return isinstance(kind, str) and isinstance(key, str)


def _expected(value: object) -> bool:
    return value is None or value is PRESENT or isinstance(value, str)


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

    def write_batch(self, ops: Sequence[Op], expect: Sequence[Expect] = ()) -> None:
        """Apply all operations atomically and durably, if every condition in `expect`
        holds at that moment (else Conflict) and every Claim is free or the claimant's
        (else Taken); when refused, nothing is applied: the compare-and-set and the
        uniqueness rules that let several nodes share state without a lost update.
        Each record changed gets the next position in the change log, in commit order."""
        ...

    def holders(self, space: str) -> dict[str, str]:
        """Every claimed value of a space -> its owner."""
        ...

    def log_head(self) -> int:
        """The position of the newest committed change (0: none yet)."""
        ...

    def read_changes(self, since: int) -> ChangeSet:
        """What changed after position `since`, with the values as of `head`, in one
        snapshot (see ChangeSet)."""
        ...

    def prune_log(self, older_than: float = LOG_RETENTION) -> None:
        """Drop log entries older than `older_than` seconds (the newest always stays)."""
        ...

    def watch(self, on_change: Callable[[int, str, str], None]) -> None:
        """Call `on_change(position, kind, key)` for changes other processes commit
        (position 0, kind "*": the feed was away and changes may have gone unreported).
        A hint, not a record: the log (`read_changes`) is. Backends that one process
        owns alone (memory, SQLite) have none to report and never call it."""
        ...

    def close(self) -> None: ...

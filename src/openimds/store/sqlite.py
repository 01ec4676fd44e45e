"""The embedded default backend: one SQLite file, private to its owner.

WAL journal with synchronous=FULL: a write that returned is on disk, so a SIGKILL right
after an approval or a key was issued loses nothing. One connection, guarded by a lock,
so the event loop and worker threads can share it.

A server opens the file `exclusive`: it holds an advisory lock on `<file>.lock` until it
closes the store. Two servers on one file would each keep their own view of events and
keys in memory and overwrite the other's writes. The kernel drops the lock when the
process dies, even by SIGKILL, so a crash never blocks the next start. Read-only openers
(the CLI) neither take nor wait for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from openimds.store.base import (
    LOG_RETENTION,
    SETTINGS_KIND,
    ChangeSet,
    Claim,
    Conflict,
    Delete,
    Expect,
    Op,
    OutageLog,
    Put,
    Release,
    StoreError,
    StoreInUse,
    Taken,
    check_batch,
    check_text,
    logged,
)

# Applied in order, each once, on start; `PRAGMA user_version` says how many a database
# has. (Stores made before versioning hold version 0 and these very tables: the first
# step is written so it is a no-op for them.)
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS records (
        kind  TEXT NOT NULL,
        key   TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (kind, key)
    );
    """,
    # Uniqueness decided by the database (Claim), and the change log (read_changes).
    """
    CREATE TABLE IF NOT EXISTS claims (
        space TEXT NOT NULL,
        value TEXT NOT NULL,
        owner TEXT NOT NULL,
        PRIMARY KEY (space, value)
    );
    CREATE INDEX IF NOT EXISTS claims_by_owner ON claims (space, owner);
    CREATE TABLE IF NOT EXISTS changes (
        position INTEGER PRIMARY KEY,
        kind     TEXT NOT NULL,
        key      TEXT NOT NULL,
        at       REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS change_log (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        head     INTEGER NOT NULL,
        pruned   INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO change_log(id, head, pruned) VALUES (1, 0, 0);
    """,
)

_Row = tuple[object, ...]
_UPSERT = (
    "INSERT INTO records(kind, key, value) VALUES(?, ?, ?) "
    "ON CONFLICT(kind, key) DO UPDATE SET value = excluded.value"
)
_DELETE = "DELETE FROM records WHERE kind = ? AND key = ?"
_KEYS_PER_QUERY = 900  # keys per lookup, under SQLite's oldest limit of 999 parameters


class SqliteStore:
    def __init__(self, path: str, *, readonly: bool = False, exclusive: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._claim: int | None = None
        self.outage = OutageLog(f"the state database {path}")
        if readonly:
            self._db = _open_readonly(path)
            return
        try:
            _prepare_private_file(Path(path))
            if exclusive:
                self._claim = _claim(path)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            _migrate(self._db, path)
        except StoreError:
            self._release()
            raise
        except (OSError, sqlite3.Error) as exc:
            self._release()
            raise StoreError(f"cannot open state database {path}: {exc}") from exc

    def get_setting(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def put_setting(self, key: str, value: str) -> None:
        check_text(key=key, value=value)
        self._transaction(
            lambda: self._setting(
                "INSERT INTO settings(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                key,
                value,
            )
        )

    def put_setting_once(self, key: str, value: str) -> str:
        check_text(key=key, value=value)
        self._transaction(
            lambda: self._setting(
                "INSERT OR IGNORE INTO settings(key, value) VALUES(?, ?)", key, value
            )
        )
        stored = self.get_setting(key)
        if stored is None:
            raise StoreError(f"state database {self.path}: setting {key} vanished")
        return stored

    def get_record(self, kind: str, key: str) -> str | None:
        rows = self._query("SELECT value FROM records WHERE kind = ? AND key = ?", (kind, key))
        return str(rows[0][0]) if rows else None

    def list_records(self, kind: str) -> list[tuple[str, str]]:
        rows = self._query("SELECT key, value FROM records WHERE kind = ? ORDER BY key", (kind,))
        return [(str(k), str(v)) for k, v in rows]

    def put_record(self, kind: str, key: str, value: str) -> None:
        self.write_batch([Put(kind, key, value)])

    def put_record_once(self, kind: str, key: str, value: str) -> str:
        check_text(kind=kind, key=key, value=value)

        def insert() -> None:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO records(kind, key, value) VALUES(?, ?, ?)",
                (kind, key, value),
            )
            if cursor.rowcount:
                self._log([(kind, key)])

        self._transaction(insert)
        stored = self.get_record(kind, key)
        if stored is None:
            raise StoreError(f"state database {self.path}: record {kind}/{key} vanished")
        return stored

    def delete_record(self, kind: str, key: str) -> None:
        self.write_batch([Delete(kind, key)])

    def write_batch(self, ops: Sequence[Op], expect: Sequence[Expect] = ()) -> None:
        check_batch(ops, expect)

        def write() -> None:
            self._check(expect)
            self._apply(ops)
            self._log(logged(ops))

        self._transaction(write)

    def holders(self, space: str) -> dict[str, str]:
        rows = self._query("SELECT value, owner FROM claims WHERE space = ?", (space,))
        return {str(value): str(owner) for value, owner in rows}

    def log_head(self) -> int:
        rows = self._query("SELECT head FROM change_log", ())
        return int(str(rows[0][0])) if rows else 0

    def read_changes(self, since: int) -> ChangeSet:
        # One connection under one lock, every write in a transaction: a snapshot.
        try:
            with self._lock:
                head, pruned = self._db.execute("SELECT head, pruned FROM change_log").fetchone()
                if since < pruned:
                    return ChangeSet(int(head), False, {})
                rows = self._db.execute(
                    "SELECT DISTINCT kind, key FROM changes WHERE position > ?", (since,)
                ).fetchall()
                values = {(str(k), str(key)): self._value(str(k), str(key)) for k, key in rows}
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc
        return ChangeSet(int(head), True, values)

    def prune_log(self, older_than: float = LOG_RETENTION) -> None:
        def prune() -> None:
            cutoff = time.time() - older_than
            row = self._db.execute(
                "SELECT max(position) FROM changes WHERE at < ? AND position < "
                "(SELECT head FROM change_log)",
                (cutoff,),
            ).fetchone()
            if row is not None and row[0] is not None:
                self._db.execute("DELETE FROM changes WHERE position <= ?", (row[0],))
                self._db.execute("UPDATE change_log SET pruned = ?", (row[0],))

        self._transaction(prune)

    def _value(self, kind: str, key: str) -> str | None:
        if kind == SETTINGS_KIND:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        else:
            row = self._db.execute(
                "SELECT value FROM records WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
        return None if row is None else str(row[0])

    def _transaction(self, work: Callable[[], None]) -> None:
        try:
            with self._lock:
                before = self._db.total_changes
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    work()
                    self._db.execute("COMMIT")
                except BaseException:
                    # SQLite rolls back by itself after some errors (a full disk); a
                    # transaction left open would refuse every later write.
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc
        # Only a change that reached the disk says it works again: a transaction that
        # changed nothing (a log pruning with nothing to prune) writes nothing to it.
        if self._db.total_changes != before:
            self.outage.succeeded()

    def _setting(self, sql: str, key: str, value: str) -> None:
        if self._db.execute(sql, (key, value)).rowcount:
            self._log([(SETTINGS_KIND, key)])

    def _log(self, changed: list[tuple[str, str]]) -> None:
        """The batch's changes at the next positions (the transaction holds the write
        lock, so positions follow commit order)."""
        if not changed:
            return
        (head,) = self._db.execute(
            "UPDATE change_log SET head = head + ? RETURNING head", (len(changed),)
        ).fetchone()
        first = int(head) - len(changed) + 1
        now = time.time()
        self._db.executemany(
            "INSERT INTO changes(position, kind, key, at) VALUES(?, ?, ?, ?)",
            [(first + n, kind, key, now) for n, (kind, key) in enumerate(changed)],
        )

    def _apply(self, ops: Sequence[Op]) -> None:
        """Runs of operations of one type, each one executemany, in the batch's order: a
        fleet's start writes tens of thousands of records at once."""
        for _, group in itertools.groupby(ops, key=type):
            run = list(group)
            first = run[0]
            if isinstance(first, Put):
                rows: list[tuple[str, ...]] = [
                    (o.kind, o.key, o.value) for o in run if isinstance(o, Put)
                ]
                self._db.executemany(_UPSERT, rows)
            elif isinstance(first, Delete):
                rows = [(o.kind, o.key) for o in run if isinstance(o, Delete)]
                self._db.executemany(_DELETE, rows)
            elif isinstance(first, Release):
                rows = [(o.space, o.owner) for o in run if isinstance(o, Release)]
                self._db.executemany("DELETE FROM claims WHERE space = ? AND owner = ?", rows)
            else:
                self._claim_all([o for o in run if isinstance(o, Claim)])

    def _claim_all(self, claims: list[Claim]) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO claims(space, value, owner) VALUES(?, ?, ?)",
            [(c.space, c.value, c.owner) for c in claims],
        )
        for claim in claims:
            row = self._db.execute(
                "SELECT owner FROM claims WHERE space = ? AND value = ?",
                (claim.space, claim.value),
            ).fetchone()
            if row is not None and str(row[0]) != claim.owner:
                raise Taken(claim.space, claim.value, str(row[0]))

    def _check(self, expect: Sequence[Expect]) -> None:
        """Inside the write transaction (BEGIN IMMEDIATE holds the write lock). Records
        expected absent (a fleet's generated ids at start: tens of thousands) are looked
        up many keys per query."""
        absent: dict[tuple[str, str], Expect] = {}
        for condition in expect:
            if condition.value is None:
                absent[(condition.kind, condition.key)] = condition
                continue
            row = self._db.execute(
                "SELECT value FROM records WHERE kind = ? AND key = ?",
                (condition.kind, condition.key),
            ).fetchone()
            if not condition.holds(None if row is None else str(row[0])):
                raise Conflict(condition)
        by_kind: dict[str, list[str]] = {}
        for kind, key in absent:
            by_kind.setdefault(kind, []).append(key)
        for kind, keys in by_kind.items():
            for start in range(0, len(keys), _KEYS_PER_QUERY):
                chunk = keys[start : start + _KEYS_PER_QUERY]
                marks = ",".join("?" * len(chunk))
                found = self._db.execute(
                    f"SELECT key FROM records WHERE kind = ? AND key IN ({marks}) LIMIT 1",
                    (kind, *chunk),
                ).fetchone()
                if found is not None:
                    raise Conflict(absent[(kind, str(found[0]))])

    def watch(self, on_change: Callable[[int, str, str], None]) -> None:
        """One process owns this store: every change is its own, none to report."""

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._release()

    def _release(self) -> None:
        if self._claim is not None:
            os.close(self._claim)  # closing the descriptor drops the flock
            self._claim = None

    def _query(self, sql: str, args: tuple[object, ...]) -> list[_Row]:
        try:
            with self._lock:
                return list(self._db.execute(sql, args).fetchall())
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: sqlite3.Error) -> StoreError:
        self.outage.failed(exc)
        return StoreError(f"state database {self.path}: {exc}")


# Group and others may neither read nor write the state: it holds private keys and the
# admin token, and a writer could swap a key or an approval.
_OPEN_TO_OTHERS = 0o066
# The files a server keeps beside the database (SQLite's journal, our lock).
_COMPANIONS = ("-wal", "-shm", ".lock")


class StateNotPrivate(StoreError):
    """The state directory or one of its files is open to other users."""


def check_private(path: str) -> None:
    """Refuse a state directory, database, journal or lock file that group or others
    may read or write, saying which chmod fixes it. What does not exist yet is created
    private later (`_prepare_private_file`)."""
    target = Path(path)
    folder = target.parent
    if folder.is_dir():
        mode = stat.S_IMODE(folder.stat().st_mode)
        if mode & stat.S_ISVTX:  # /tmp and the like: shared on purpose, not ours to chmod
            raise StateNotPrivate(
                f"the state directory {folder} is shared with other users (mode {mode:04o}): "
                f"put the state in a private directory, e.g. --state {folder}/openimds/state.db "
                "(created 0700)"
            )
        if mode & _OPEN_TO_OTHERS:
            raise StateNotPrivate(_not_private("directory", folder, mode, "700"))
    for file in (target, *(Path(f"{path}{suffix}") for suffix in _COMPANIONS)):
        if file.is_file():
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & _OPEN_TO_OTHERS:
                raise StateNotPrivate(_not_private("file", file, mode, "600"))


def _not_private(what: str, where: Path, mode: int, fixed: str) -> str:
    return (
        f"the state {what} {where} is readable or writable by other users (mode {mode:04o}); "
        f"it holds private keys: run `chmod {fixed} {where}` and start again"
    )


def check_location(path: str) -> None:
    """The file can be opened for writing, or created with its directories, and what
    exists is private: checked without creating anything."""
    check_private(path)
    target = Path(path)
    if target.exists():
        if not target.is_file():
            raise StoreError(f"state database {path}: not a regular file")
        if not os.access(target, os.R_OK | os.W_OK):
            raise StoreError(f"state database {path}: not writable")
        return
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise StoreError(f"cannot create state database {path}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise StoreError(f"cannot create state database {path}: {ancestor} is not writable")


def _migrate(db: sqlite3.Connection, path: str) -> None:
    """Bring the database to the schema this openimds knows, in one transaction."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise StoreError(
            f"state database {path}: schema version {version} is newer than this openimds "
            f"knows ({len(MIGRATIONS)}); upgrade openimds"
        )
    if version == len(MIGRATIONS):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for step in MIGRATIONS[version:]:
            for statement in step.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _prepare_private_file(path: Path) -> None:
    """The state holds private keys: directory 0700, file 0600, before SQLite opens it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except (FileExistsError, NotADirectoryError):
        blocker = next(p for p in (path.parent, *path.parent.parents) if p.exists())
        raise StoreError(
            f"state database {path}: cannot create its directory {path.parent}: "
            f"{blocker} is a file, not a directory"
        ) from None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _claim(path: str) -> int:
    """Lock `<path>.lock` for this process and write our pid in it for the next one's
    message; StoreInUse when another process holds it."""
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise StoreInUse(
            f"the state store {path} is in use by another openimds server (pid {holder}); "
            "stop it, or give this server another --state"
        ) from None
    except OSError:
        os.close(fd)
        raise
    with contextlib.suppress(OSError):  # the pid only words a message; a full disk may refuse it
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _open_readonly(path: str) -> sqlite3.Connection:
    """For readers such as the CLI: never creates the file, its directory or a schema."""
    if not os.path.isfile(path):
        raise StoreError(f"no state database at {path}")
    try:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=5000")
        return db
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open state database {path}: {exc}") from exc

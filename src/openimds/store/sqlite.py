"""The embedded default backend: one SQLite file, private to its owner.

WAL journal with synchronous=FULL: a write that returned is on disk, so a SIGKILL right
after an approval or a key was issued loses nothing. One connection, guarded by a lock,
so the event loop and worker threads can share it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from openimds.store.base import Delete, Put, StoreError, check_batch, check_text

_SCHEMA = """
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
"""

_Row = tuple[object, ...]


class SqliteStore:
    def __init__(self, path: str, *, readonly: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        if readonly:
            self._db = _open_readonly(path)
            return
        try:
            _prepare_private_file(Path(path))
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open state database {path}: {exc}") from exc

    def get_setting(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def put_setting(self, key: str, value: str) -> None:
        check_text(key=key, value=value)
        self._execute(
            "INSERT INTO settings(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def put_setting_once(self, key: str, value: str) -> str:
        check_text(key=key, value=value)
        self._execute("INSERT OR IGNORE INTO settings(key, value) VALUES(?, ?)", (key, value))
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
        self._execute(
            "INSERT OR IGNORE INTO records(kind, key, value) VALUES(?, ?, ?)", (kind, key, value)
        )
        stored = self.get_record(kind, key)
        if stored is None:
            raise StoreError(f"state database {self.path}: record {kind}/{key} vanished")
        return stored

    def delete_record(self, kind: str, key: str) -> None:
        self.write_batch([Delete(kind, key)])

    def write_batch(self, ops: Sequence[Put | Delete]) -> None:
        check_batch(ops)
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for op in ops:
                        if isinstance(op, Put):
                            self._db.execute(
                                "INSERT INTO records(kind, key, value) VALUES(?, ?, ?) "
                                "ON CONFLICT(kind, key) DO UPDATE SET value = excluded.value",
                                (op.kind, op.key, op.value),
                            )
                        else:
                            self._db.execute(
                                "DELETE FROM records WHERE kind = ? AND key = ?", (op.kind, op.key)
                            )
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _query(self, sql: str, args: tuple[object, ...]) -> list[_Row]:
        try:
            with self._lock:
                return list(self._db.execute(sql, args).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {exc}") from exc

    def _execute(self, sql: str, args: tuple[object, ...]) -> None:
        try:
            with self._lock:
                self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {exc}") from exc


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

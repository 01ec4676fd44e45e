"""The embedded default backend: one SQLite file, private to its owner.

WAL journal with synchronous=FULL: a write that returned is on disk, so a SIGKILL right
after an approval or a key was issued loses nothing.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from openimds.store.base import StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class SqliteStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            _prepare_private_file(Path(path))
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open state database {path}: {exc}") from exc

    @property
    def connection(self) -> sqlite3.Connection:
        """For backends' own tables (keys, events); callers hold `lock` while using it."""
        return self._db

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    def get_setting(self, key: str) -> str | None:
        row = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def put_setting(self, key: str, value: str) -> None:
        self._execute(
            "INSERT INTO settings(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def put_setting_once(self, key: str, value: str) -> str:
        self._execute("INSERT OR IGNORE INTO settings(key, value) VALUES(?, ?)", (key, value))
        stored = self.get_setting(key)
        assert stored is not None
        return stored

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _query(self, sql: str, args: tuple[object, ...]) -> tuple[object, ...] | None:
        try:
            with self._lock:
                row: tuple[object, ...] | None = self._db.execute(sql, args).fetchone()
                return row
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
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)

"""The shared backend: one PostgreSQL database for any number of openimds nodes.

Same two shapes as every backend (settings, records by kind), plus a change feed: every
write notifies the channel `openimds_changes` inside its own transaction (so it is
delivered exactly when the change commits), and `watch` hands each change to a callback
on a listening thread. Nodes follow each other's changes that way, never by polling.

A lost connection is a StoreError for the call that met it; the next call reconnects,
so a node recovers by itself when the database returns. The watcher reconnects too and
then reports a `RESYNC` change, since notifications sent while it was away are gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from openimds.store.base import (
    Conflict,
    Delete,
    Expect,
    Put,
    StoreError,
    check_batch,
    check_text,
)

log = logging.getLogger("openimds.store")

CHANNEL = "openimds_changes"
SETTINGS_KIND = "setting"  # the kind a changed setting is reported under
RESYNC = ("*", "*")  # (kind, key) reported after the watcher reconnects

# Applied in order, each once, under an advisory lock so nodes starting together agree.
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
)
_MIGRATION_LOCK = 72_716_001  # pg_advisory_xact_lock key: "openimds migrations"

Watcher = Callable[[str, str], None]


class PostgresStore:
    def __init__(self, url: str, *, readonly: bool = False, connect_timeout: int = 5) -> None:
        self.url = url
        self.readonly = readonly
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = threading.Event()
        self._watchers: list[threading.Thread] = []
        self._down_since: float | None = None
        with self._lock:
            try:
                self._connection()
            except _Unreachable as exc:
                raise StoreError(str(exc)) from None
        if not readonly:
            try:
                self._migrate()
            except BaseException:
                self.close()
                raise

    # -- the Store interface -------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM settings WHERE key = %s", (key,))
        return str(rows[0][0]) if rows else None

    def put_setting(self, key: str, value: str) -> None:
        check_text(key=key, value=value)
        self._write(
            "INSERT INTO settings(key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
            (SETTINGS_KIND, key),
        )

    def put_setting_once(self, key: str, value: str) -> str:
        check_text(key=key, value=value)
        self._write(
            "INSERT INTO settings(key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
            (key, value),
            (SETTINGS_KIND, key),
        )
        stored = self.get_setting(key)
        if stored is None:
            raise StoreError(f"{self._where()}: setting {key} vanished")
        return stored

    def get_record(self, kind: str, key: str) -> str | None:
        rows = self._query("SELECT value FROM records WHERE kind = %s AND key = %s", (kind, key))
        return str(rows[0][0]) if rows else None

    def list_records(self, kind: str) -> list[tuple[str, str]]:
        rows = self._query(
            'SELECT key, value FROM records WHERE kind = %s ORDER BY key COLLATE "C"', (kind,)
        )
        return [(str(k), str(v)) for k, v in rows]

    def put_record(self, kind: str, key: str, value: str) -> None:
        self.write_batch([Put(kind, key, value)])

    def put_record_once(self, kind: str, key: str, value: str) -> str:
        check_text(kind=kind, key=key, value=value)
        self._write(
            "INSERT INTO records(kind, key, value) VALUES (%s, %s, %s) "
            "ON CONFLICT (kind, key) DO NOTHING",
            (kind, key, value),
            (kind, key),
        )
        stored = self.get_record(kind, key)
        if stored is None:
            raise StoreError(f"{self._where()}: record {kind}/{key} vanished")
        return stored

    def delete_record(self, kind: str, key: str) -> None:
        self.write_batch([Delete(kind, key)])

    def write_batch(self, ops: Sequence[Put | Delete], expect: Sequence[Expect] = ()) -> None:
        check_batch(ops, expect)
        if not ops and not expect:
            return

        def apply(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction(), conn.cursor() as cur:
                _check(cur, expect)
                for op in ops:
                    if isinstance(op, Put):
                        cur.execute(
                            "INSERT INTO records(kind, key, value) VALUES (%s, %s, %s) "
                            "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value",
                            (op.kind, op.key, op.value),
                        )
                    else:
                        cur.execute(
                            "DELETE FROM records WHERE kind = %s AND key = %s", (op.kind, op.key)
                        )
                    _notify(cur, op.kind, op.key)

        self._run(apply)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        for thread in self._watchers:
            thread.join(timeout=2)

    # -- the change feed -------------------------------------------------------------------
    def watch(self, on_change: Watcher) -> None:
        """Call `on_change(kind, key)` for every change any node commits (this one too),
        on a thread of its own, from the moment this returns (it waits up to the connect
        timeout for the feed to start); `RESYNC` once the feed is back after a gap, since
        changes committed in the gap were not reported."""
        ready = threading.Event()
        thread = threading.Thread(
            target=self._listen, args=(on_change, ready), name="store-watch", daemon=True
        )
        self._watchers.append(thread)
        thread.start()
        ready.wait(self.connect_timeout)

    def _listen(self, on_change: Watcher, ready: threading.Event) -> None:
        missed = False
        while not self._closed.is_set():
            try:
                with psycopg.connect(
                    self.url, autocommit=True, connect_timeout=self.connect_timeout
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    ready.set()
                    if missed:
                        on_change(*RESYNC)
                        missed = False
                    while not self._closed.is_set():
                        for note in conn.notifies(timeout=0.5, stop_after=64):
                            kind, _, key = note.payload.partition("/")
                            on_change(kind, key)
            except psycopg.Error as exc:
                missed = True
                if self._closed.is_set():
                    return
                log.warning("state store change feed lost (%s); reconnecting", _one_line(exc))
                self._closed.wait(1.0)
            except Exception:
                log.exception("a state store change handler failed")
                self._closed.wait(1.0)

    # -- plumbing --------------------------------------------------------------------------
    def _where(self) -> str:
        return f"state database {_redacted(self.url)}"

    def _connection(self) -> psycopg.Connection[Any]:
        """The open connection, reconnecting when the last one broke. Call under _lock."""
        if self._closed.is_set():
            raise StoreError(f"{self._where()}: closed")
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            try:
                conn = psycopg.connect(
                    self.url, autocommit=True, connect_timeout=self.connect_timeout
                )
            except psycopg.Error as exc:
                self._conn = None
                raise _Unreachable(f"cannot reach {self._where()}: {_one_line(exc)}") from exc
            if self.readonly:
                conn.execute("SET default_transaction_read_only = on")
            self._conn = conn
        return conn

    def _run(self, work: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        started = time.monotonic()
        with self._lock:
            try:
                result = work(self._connection())
            except psycopg.Error as exc:
                if self._conn is not None and self._conn.broken:
                    self._conn = None  # reconnect on the next call
                    self._went_down(exc)
                raise StoreError(f"{self._where()}: {_one_line(exc)}") from exc
            except _Unreachable as exc:
                self._went_down(exc.__cause__ or exc)
                raise StoreError(str(exc)) from exc
            finally:
                elapsed = time.monotonic() - started
                if elapsed > 1.0:
                    log.warning("state store call took %.1f s", elapsed)
            if self._down_since is not None:
                log.warning(
                    "state store %s reachable again after %.0f s",
                    _redacted(self.url),
                    time.monotonic() - self._down_since,
                )
                self._down_since = None
            return result

    def _went_down(self, cause: BaseException) -> None:
        """One log line per outage, not one per failing request."""
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.error(
                "state store %s unreachable (%s): reads are answered from memory, writes "
                "get 503 until it returns",
                _redacted(self.url),
                _one_line(cause),
            )

    def _query(self, sql: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
        def query(conn: psycopg.Connection[Any]) -> list[tuple[object, ...]]:
            return list(conn.execute(sql, args).fetchall())

        result: list[tuple[object, ...]] = self._run(query)
        return result

    def _write(self, sql: str, args: tuple[object, ...], change: tuple[str, str]) -> None:
        def write(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(sql, args)
                _notify(cur, *change)

        self._run(write)

    def _migrate(self) -> None:
        def migrate(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                conn.execute("CREATE TABLE IF NOT EXISTS openimds_schema (version INTEGER)")
                row = conn.execute("SELECT max(version) FROM openimds_schema").fetchone()
                current = int(row[0]) if row and row[0] is not None else 0
                if current > len(MIGRATIONS):
                    raise StoreError(
                        f"{self._where()}: schema version {current} is newer than this "
                        f"openimds knows ({len(MIGRATIONS)}); upgrade openimds"
                    )
                for version in range(current + 1, len(MIGRATIONS) + 1):
                    conn.execute(MIGRATIONS[version - 1].encode())
                    conn.execute("INSERT INTO openimds_schema(version) VALUES (%s)", (version,))

        self._run(migrate)


class _Unreachable(Exception):
    """No connection could be made (reported as a StoreError by `_run`)."""


def _check(cur: psycopg.Cursor[Any], expect: Sequence[Expect]) -> None:
    """Compare-and-set inside the transaction. A row that does not exist cannot be locked
    with FOR UPDATE, so each condition takes a transaction-scoped advisory lock on its
    (kind, key) first: two nodes checking the same record queue up instead of both
    seeing the old value."""
    for condition in sorted(expect, key=lambda c: (c.kind, c.key)):  # one lock order
        cur.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{condition.kind}/{condition.key}",)
        )
        cur.execute(
            "SELECT value FROM records WHERE kind = %s AND key = %s",
            (condition.kind, condition.key),
        )
        row = cur.fetchone()
        if (None if row is None else str(row[0])) != condition.value:
            raise Conflict(condition)


def _notify(cur: psycopg.Cursor[Any], kind: str, key: str) -> None:
    # NOTIFY payloads are limited to 8000 bytes; keys are short, but a long one is cut
    # rather than failing the write (a watcher then reloads the whole kind).
    cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{kind}/{key}"[:7900]))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _redacted(url: str) -> str:
    """The URL without a password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"

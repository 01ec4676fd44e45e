"""The shared backend: one PostgreSQL database for any number of openimds nodes.

Same two shapes as every backend (settings, records by kind), claims decided by a unique
key, and the change log: every write gives each change the next position inside its own
transaction and notifies the channel `openimds_changes` with it (delivered exactly when
the change commits); `watch` hands each notice to a callback on a listening thread. The
notices are hints that make a node read the log at once; the log (`read_changes`) is
what it follows, so a notice lost in an outage delays a change but never loses it.

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
    StoreError,
    Taken,
    check_batch,
    check_text,
    logged,
)

log = logging.getLogger("openimds.store")

CHANNEL = "openimds_changes"
RESYNC = (0, "*", "*")  # (position, kind, key) reported after the watcher reconnects

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
    # Uniqueness decided by the database (Claim), and the change log (read_changes): the
    # head row is updated by every writing transaction, so its row lock orders them and
    # positions follow commit order (a reader that sees position N sees all before it).
    """
    CREATE TABLE IF NOT EXISTS claims (
        space TEXT NOT NULL,
        value TEXT NOT NULL,
        owner TEXT NOT NULL,
        PRIMARY KEY (space, value)
    );
    CREATE INDEX IF NOT EXISTS claims_by_owner ON claims (space, owner);
    CREATE TABLE IF NOT EXISTS changes (
        position BIGINT PRIMARY KEY,
        kind     TEXT NOT NULL,
        key      TEXT NOT NULL,
        at       TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS change_log (
        id     INTEGER PRIMARY KEY CHECK (id = 1),
        head   BIGINT NOT NULL,
        pruned BIGINT NOT NULL
    );
    INSERT INTO change_log(id, head, pruned) VALUES (1, 0, 0) ON CONFLICT DO NOTHING;
    """,
)
_MIGRATION_LOCK = 72_716_001  # pg_advisory_xact_lock key: "openimds migrations"

Watcher = Callable[[int, str, str], None]


class PostgresStore:
    def __init__(self, url: str, *, readonly: bool = False, connect_timeout: int = 5) -> None:
        self.url = url
        self.readonly = readonly
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = threading.Event()
        self._watchers: list[threading.Thread] = []
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
            only_if_written=True,
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
            only_if_written=True,
        )
        stored = self.get_record(kind, key)
        if stored is None:
            raise StoreError(f"{self._where()}: record {kind}/{key} vanished")
        return stored

    def delete_record(self, kind: str, key: str) -> None:
        self.write_batch([Delete(kind, key)])

    def write_batch(self, ops: Sequence[Op], expect: Sequence[Expect] = ()) -> None:
        check_batch(ops, expect)
        if not ops and not expect:
            return

        def apply(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction(), conn.cursor() as cur:
                _check(cur, expect)
                _apply(cur, ops)
                _log(cur, logged(ops))

        self._run(apply)

    def holders(self, space: str) -> dict[str, str]:
        rows = self._query("SELECT value, owner FROM claims WHERE space = %s", (space,))
        return {str(value): str(owner) for value, owner in rows}

    def log_head(self) -> int:
        rows = self._query("SELECT head FROM change_log", ())
        return int(str(rows[0][0])) if rows else 0

    def read_changes(self, since: int) -> ChangeSet:
        def read(conn: psycopg.Connection[Any]) -> ChangeSet:
            # One snapshot for the head, the log and the values.
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                row = cur.execute("SELECT head, pruned FROM change_log").fetchone()
                head, pruned = (int(row[0]), int(row[1])) if row else (0, 0)
                if since < pruned:
                    return ChangeSet(head, False, {})
                cur.execute(
                    "SELECT c.kind, c.key, COALESCE(r.value, s.value) FROM "
                    "(SELECT DISTINCT kind, key FROM changes WHERE position > %s) c "
                    "LEFT JOIN records r ON r.kind = c.kind AND r.key = c.key "
                    "LEFT JOIN settings s ON c.kind = %s AND s.key = c.key",
                    (since, SETTINGS_KIND),
                )
                values = {
                    (str(kind), str(key)): None if value is None else str(value)
                    for kind, key, value in cur.fetchall()
                }
                return ChangeSet(head, True, values)

        result: ChangeSet = self._run(read)
        return result

    def prune_log(self, older_than: float = LOG_RETENTION) -> None:
        def prune(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(
                    "SELECT max(position) FROM changes WHERE at < now() - make_interval("
                    "secs => %s) AND position < (SELECT head FROM change_log)",
                    (older_than,),
                )
                row = cur.fetchone()
                if row is not None and row[0] is not None:
                    cur.execute("DELETE FROM changes WHERE position <= %s", (row[0],))
                    cur.execute("UPDATE change_log SET pruned = greatest(pruned, %s)", (row[0],))

        self._run(prune)

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
                            on_change(*_parse_notice(note.payload))
            except psycopg.Error as exc:
                if self._closed.is_set():
                    return
                if not missed:  # once per outage: the store logs the outage itself
                    log.warning("state store change feed lost (%s); reconnecting", _one_line(exc))
                missed = True
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
            _outage_over(self.url)
            return result

    def _went_down(self, cause: BaseException) -> None:
        """One log line per outage, not one per failing request (nor per handle)."""
        _outage_began(self.url, cause)

    def _query(self, sql: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
        def query(conn: psycopg.Connection[Any]) -> list[tuple[object, ...]]:
            return list(conn.execute(sql, args).fetchall())

        result: list[tuple[object, ...]] = self._run(query)
        return result

    def _write(
        self,
        sql: str,
        args: tuple[object, ...],
        change: tuple[str, str],
        *,
        only_if_written: bool = False,
    ) -> None:
        def write(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(sql, args)
                if cur.rowcount or not only_if_written:
                    _log(cur, [change])

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


# Outages by database (redacted URL) -> when they began: a node has several handles on
# one database (its own, its follower's), and an outage is one event for all of them.
_OUTAGES: dict[str, float] = {}
_OUTAGES_LOCK = threading.Lock()


def _outage_began(url: str, cause: BaseException) -> None:
    where = _redacted(url)
    with _OUTAGES_LOCK:
        if where in _OUTAGES:
            return
        _OUTAGES[where] = time.monotonic()
    log.error(
        "state store %s unreachable (%s): reads are answered from memory, writes "
        "get 503 until it returns",
        where,
        _one_line(cause),
    )


def _outage_over(url: str) -> None:
    if not _OUTAGES:  # the common case: no lock, no formatting
        return
    where = _redacted(url)
    with _OUTAGES_LOCK:
        began = _OUTAGES.pop(where, None)
    if began is not None:
        log.warning("state store %s reachable again after %.1f s", where, time.monotonic() - began)


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
        if not condition.holds(None if row is None else str(row[0])):
            raise Conflict(condition)


def _apply(cur: psycopg.Cursor[Any], ops: Sequence[Op]) -> None:
    for op in ops:
        if isinstance(op, Put):
            cur.execute(
                "INSERT INTO records(kind, key, value) VALUES (%s, %s, %s) "
                "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value",
                (op.kind, op.key, op.value),
            )
        elif isinstance(op, Delete):
            cur.execute("DELETE FROM records WHERE kind = %s AND key = %s", (op.kind, op.key))
        elif isinstance(op, Release):
            cur.execute("DELETE FROM claims WHERE space = %s AND owner = %s", (op.space, op.owner))
        else:
            _claim(cur, op)


def _claim(cur: psycopg.Cursor[Any], claim: Claim) -> None:
    """The unique key decides: an insert racing another node's waits for it to commit
    or roll back, then finds the winner's row (read committed: a new snapshot)."""
    cur.execute(
        "INSERT INTO claims(space, value, owner) VALUES (%s, %s, %s) "
        "ON CONFLICT (space, value) DO NOTHING",
        (claim.space, claim.value, claim.owner),
    )
    if cur.rowcount:
        return
    row = cur.execute(
        "SELECT owner FROM claims WHERE space = %s AND value = %s", (claim.space, claim.value)
    ).fetchone()
    if row is not None and str(row[0]) != claim.owner:
        raise Taken(claim.space, claim.value, str(row[0]))


def _log(cur: psycopg.Cursor[Any], changed: list[tuple[str, str]]) -> None:
    """Give each change the next position and notify it, inside the transaction: the
    head row's lock orders writers, and the notices go out when the change commits."""
    if not changed:
        return
    row = cur.execute(
        "UPDATE change_log SET head = head + %s RETURNING head", (len(changed),)
    ).fetchone()
    first = int(row[0]) - len(changed) + 1 if row else 1
    rows = [(first + n, kind, key) for n, (kind, key) in enumerate(changed)]
    cur.executemany("INSERT INTO changes(position, kind, key) VALUES (%s, %s, %s)", rows)
    for position, kind, key in rows:
        # NOTIFY payloads are limited to 8000 bytes; keys are short, but a long one is
        # cut rather than failing the write (the log has it whole).
        cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{position} {kind}/{key}"[:7900]))


def _parse_notice(payload: str) -> tuple[int, str, str]:
    position, _, change = payload.partition(" ")
    kind, _, key = change.partition("/")
    return (int(position) if position.isdigit() else 0), kind, key


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

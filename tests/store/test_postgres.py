"""PostgreSQL only: the change feed between nodes, migrations, and outages."""

from __future__ import annotations

import threading

import psycopg
import pytest

from openimds.store import Conflict, Expect, Put, Store, StoreError, open_store
from openimds.store.postgres import MIGRATIONS, RESYNC, PostgresStore
from tests.support.postgres import Cluster, wait_until


class Seen:
    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []
        self.positions: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, position: int, kind: str, key: str) -> None:
        with self.lock:
            self.changes.append((kind, key))
            self.positions.append(position)

    def has(self, change: tuple[str, str]) -> bool:
        with self.lock:
            return change in self.changes


def test_a_change_on_one_node_reaches_the_other(postgres_url: str) -> None:
    a, b = open_store(postgres_url), open_store(postgres_url)
    seen = Seen()
    b.watch(seen)
    try:
        a.write_batch([Put("scheduled_event", "E1", "{}"), Put("vm", "web-1", "{}")])
        a.put_setting("admin_token", "x" * 20)
        assert wait_until(lambda: seen.has(("vm", "web-1")), timeout=2)
        assert seen.has(("scheduled_event", "E1"))
        assert wait_until(lambda: seen.has(("setting", "admin_token")), timeout=2)
        assert b.get_record("vm", "web-1") == "{}"
    finally:
        a.close()
        b.close()


def test_migrations_run_once_and_a_newer_schema_is_refused(postgres_url: str) -> None:
    first = PostgresStore(postgres_url)
    second = PostgresStore(postgres_url)  # a second node starting: nothing to do
    first.close()
    second.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM openimds_schema")]
        assert versions == list(range(1, len(MIGRATIONS) + 1))
        conn.execute("INSERT INTO openimds_schema(version) VALUES (%s)", (len(MIGRATIONS) + 1,))
    with pytest.raises(StoreError, match="newer than this openimds knows"):
        PostgresStore(postgres_url)


def test_nodes_starting_together_agree_on_one_schema(postgres_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            PostgresStore(postgres_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_an_outage_is_a_store_error_then_the_store_recovers(
    postgres_cluster: Cluster, postgres_url: str
) -> None:
    store = open_store(postgres_url)
    seen = Seen()
    store.watch(seen)
    try:
        store.put_setting("before", "1")
        postgres_cluster.stop()
        with pytest.raises(StoreError, match="state database postgresql://postgres@"):
            store.put_setting("during", "1")
        with pytest.raises(StoreError):
            store.get_setting("before")
        postgres_cluster.start()
        assert wait_until(lambda: _recovered(store), timeout=10)
        assert store.get_setting("before") == "1"  # nothing acknowledged is lost
        assert store.get_setting("during") is None  # nothing refused was kept
        # The watcher reconnected and says it may have missed changes.
        assert wait_until(lambda: seen.has(RESYNC[1:]), timeout=10)
    finally:
        if not postgres_cluster.running():
            postgres_cluster.start()
        store.close()


def test_a_reader_changes_nothing(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    reader = open_store(postgres_url, readonly=True)
    try:
        with pytest.raises(StoreError, match="read-only"):
            reader.put_setting("k", "v")
    finally:
        reader.close()


def test_no_password_in_errors() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://user:s3cret-pw@127.0.0.1:1/db")
    assert "s3cret-pw" not in str(caught.value)
    assert "postgresql://user@127.0.0.1:1/db" in str(caught.value)


def _recovered(store: object) -> bool:
    try:
        store.put_setting("after", "1")  # type: ignore[attr-defined]
    except StoreError:
        return False
    return True


def test_compare_and_set_loses_no_update_across_nodes(postgres_url: str) -> None:
    """Four nodes increment one counter at once, each re-reading after a Conflict: every
    increment lands, as two approvals posted to two nodes at one moment both count."""
    nodes = [open_store(postgres_url) for _ in range(4)]
    each = 25

    def increment(store: Store) -> None:
        done = 0
        while done < each:
            current = store.get_record("book", "version")
            following = str(int(current or "0") + 1)
            try:
                store.write_batch(
                    [Put("book", "version", following)],
                    expect=[Expect("book", "version", current)],
                )
            except Conflict:
                continue
            done += 1

    threads = [threading.Thread(target=increment, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert nodes[0].get_record("book", "version") == str(4 * each)
    finally:
        for node in nodes:
            node.close()


def test_an_outage_is_logged_once_and_its_end_once(
    postgres_cluster: Cluster, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(postgres_url)
    try:
        postgres_cluster.stop()
        for _ in range(5):
            with pytest.raises(StoreError):
                store.put_setting("k", "v")
        postgres_cluster.start()
        assert wait_until(lambda: _recovered(store), timeout=10)
        store.get_setting("k")
    finally:
        if not postgres_cluster.running():
            postgres_cluster.start()
        store.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "openimds.store"]
    down = [line for line in lines if "unreachable" in line]
    back = [line for line in lines if "reachable again" in line]
    assert len(down) == 1 and len(back) == 1, lines
    assert "writes get 503" in down[0]

"""One contract, every backend: what a feature may rely on from `runtime.store`."""

from __future__ import annotations

import functools
import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from openimds.store import (
    PRESENT,
    Claim,
    Conflict,
    Delete,
    Expect,
    Put,
    Release,
    Store,
    StoreError,
    Taken,
    open_store,
)
from openimds.store.memory import MemoryStore
from openimds.store.sqlite import SqliteStore

Opener = Callable[[], Store]


# Every backend, by the state URL a user would give; `{tmp}` is the test's directory. A new
# backend is one entry here.
# `{postgres}` is a fresh database of the test session's throwaway cluster.
BACKEND_URLS = {
    "memory": "memory:",
    "sqlite": "sqlite:///{tmp}/state.db",
    "postgresql": "{postgres}",
}


@pytest.fixture(params=sorted(BACKEND_URLS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = BACKEND_URLS[request.param]
    postgres = request.getfixturevalue("postgres_url") if "{postgres}" in url else ""
    backend = open_store(url.format(tmp=tmp_path, postgres=postgres))
    yield backend
    backend.close()


def test_settings_round_trip(store: Store) -> None:
    assert store.get_setting("k") is None
    store.put_setting("k", "v1")
    assert store.get_setting("k") == "v1"
    store.put_setting("k", "v2")
    assert store.get_setting("k") == "v2"
    store.put_setting("empty", "")
    assert store.get_setting("empty") == ""


def test_put_setting_once_first_writer_wins(store: Store) -> None:
    assert store.put_setting_once("token", "first") == "first"
    assert store.put_setting_once("token", "second") == "first"
    assert store.get_setting("token") == "first"


def test_records_round_trip_per_kind(store: Store) -> None:
    assert store.get_record("keys", "a") is None
    store.put_record("keys", "a", '{"n": 1}')
    store.put_record("events", "a", "other kind")
    assert store.get_record("keys", "a") == '{"n": 1}'
    assert store.get_record("events", "a") == "other kind"
    store.put_record("keys", "a", "replaced")
    assert store.get_record("keys", "a") == "replaced"
    store.delete_record("keys", "a")
    assert store.get_record("keys", "a") is None
    assert store.get_record("events", "a") == "other kind"
    store.delete_record("keys", "never-there")  # deleting nothing is not an error


def test_put_record_once_first_writer_wins(store: Store) -> None:
    assert store.put_record_once("ca", "root", "pem-1") == "pem-1"
    assert store.put_record_once("ca", "root", "pem-2") == "pem-1"
    assert store.put_record_once("other", "root", "pem-3") == "pem-3"


def test_list_records_is_ordered_by_key_and_scoped_to_its_kind(store: Store) -> None:
    keys = ["b", "a", "B", "a10", "a2", "é", "z", "0"]
    for key in keys:
        store.put_record("events", key, f"v-{key}")
    store.put_record("keys", "aa", "not listed")
    listed = store.list_records("events")
    assert [k for k, _ in listed] == sorted(keys)
    assert all(v == f"v-{k}" for k, v in listed)
    assert store.list_records("nothing") == []


def test_write_batch_applies_puts_and_deletes_together(store: Store) -> None:
    store.put_record("events", "old", "x")
    store.write_batch(
        [Put("events", "e1", "1"), Put("approvals", "e1", "yes"), Delete("events", "old")]
    )
    assert store.list_records("events") == [("e1", "1")]
    assert store.get_record("approvals", "e1") == "yes"
    store.write_batch([])  # an empty batch is fine


def test_a_failing_batch_leaves_nothing(store: Store) -> None:
    store.put_record("events", "keep", "before")
    with pytest.raises(StoreError):
        store.write_batch(
            [
                Put("events", "new", "1"),
                Delete("events", "keep"),
                Put("events", "bad", None),  # type: ignore[arg-type]
            ]
        )
    assert store.get_record("events", "new") is None
    assert store.get_record("events", "keep") == "before"
    assert store.list_records("events") == [("keep", "before")]


def test_values_must_be_text(store: Store) -> None:
    with pytest.raises(StoreError):
        store.put_record("events", "n", 5)  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.put_setting("n", None)  # type: ignore[arg-type]
    assert store.get_record("events", "n") is None
    assert store.get_setting("n") is None


def test_open_store_chooses_the_backend_by_url(tmp_path: Path) -> None:
    for url in ("memory:", ":memory:"):
        assert isinstance(open_store(url), MemoryStore)
    for url in (str(tmp_path / "a.db"), f"sqlite://{tmp_path}/b.db"):
        sqlite = open_store(url)
        assert isinstance(sqlite, SqliteStore)
        sqlite.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == ["a.db", "b.db"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "the state path is empty"),
        ("sqlite://host/x.db", "three slashes"),
        ("mysql://x@y/z", "unknown state URL scheme 'mysql'"),
    ],
)
def test_a_bad_state_url_is_one_clear_error(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)


def test_a_reader_never_creates_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "nothing" / "state.db"
    with pytest.raises(StoreError, match="no state database at"):
        open_store(str(missing), readonly=True)
    assert not (tmp_path / "nothing").exists()
    writer = open_store(str(tmp_path / "state.db"))
    writer.put_setting("admin_token", "t")
    reader = open_store(str(tmp_path / "state.db"), readonly=True)
    assert reader.get_setting("admin_token") == "t"
    with pytest.raises(StoreError):
        reader.put_setting("x", "y")
    reader.close()
    writer.close()


# -- SQLite only: durability, file modes, errors -----------------------------------------


def test_sqlite_keeps_everything_across_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    first = SqliteStore(path)
    first.put_setting_once("admin_token", "tok")
    first.write_batch([Put("keys", "k1", "v1"), Put("keys", "k2", "v2")])
    first.delete_record("keys", "k2")
    first.close()
    second = SqliteStore(path)
    assert second.get_setting("admin_token") == "tok"
    assert second.list_records("keys") == [("k1", "v1")]
    assert second.put_setting_once("admin_token", "other") == "tok"
    second.close()


def test_sqlite_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "state.db"
    store = SqliteStore(str(path))
    store.put_record("keys", "k", "secret")
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    for name in os.listdir(path.parent):  # the database and its WAL/shm files
        assert stat.S_IMODE(os.stat(path.parent / name).st_mode) == 0o600, name
    store.close()


def test_sqlite_tightens_a_too_open_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    SqliteStore(str(path)).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_sqlite_failure_in_the_middle_of_a_batch_rolls_back(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    store = SqliteStore(path)
    store.put_record("events", "keep", "before")
    # A database-level failure on the third statement (a trigger stands in for a full disk).
    store._db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON records WHEN NEW.key = 'boom' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with pytest.raises(StoreError, match="refused"):
        store.write_batch(
            [Put("events", "new", "1"), Delete("events", "keep"), Put("events", "boom", "x")]
        )
    assert store.list_records("events") == [("keep", "before")]
    store.write_batch([Put("events", "after", "ok")])  # the store is still usable
    assert store.get_record("events", "after") == "ok"
    store.close()


@pytest.mark.parametrize("kind", ["corrupt", "directory", "parent-is-file"])
def test_sqlite_bad_files_raise_store_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "state.db"
    if kind == "corrupt":
        path.write_bytes(b"this is not a database" * 100)
    elif kind == "directory":
        path.mkdir()
    else:
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "state.db"
    with pytest.raises(StoreError) as caught:
        SqliteStore(str(path))
    assert str(path) in str(caught.value)
    assert not isinstance(caught.value, OSError)


def test_sqlite_use_after_close_raises_store_error(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    store.close()
    with pytest.raises(StoreError):
        store.get_setting("k")
    with pytest.raises(StoreError):
        store.write_batch([Put("k", "k", "v")])


def test_sqlite_two_handles_on_one_file_agree_on_a_generated_secret(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    first, second = SqliteStore(path), SqliteStore(path)
    assert first.put_setting_once("admin_token", "from-first") == "from-first"
    assert second.put_setting_once("admin_token", "from-second") == "from-first"
    second.write_batch([Put("keys", "k", "v")])
    assert first.get_record("keys", "k") == "v"  # committed writes are visible at once
    first.close()
    second.close()


def test_a_conditional_batch_applies_only_when_its_conditions_hold(store: Store) -> None:
    store.write_batch([Put("book", "version", "1")], expect=[Expect("book", "version", None)])
    with pytest.raises(Conflict, match="book/version changed meanwhile"):
        store.write_batch(
            [Put("book", "version", "2"), Put("events", "E1", "x")],
            expect=[Expect("book", "version", None)],
        )
    assert store.get_record("events", "E1") is None  # nothing of a refused batch
    store.write_batch(
        [Put("book", "version", "2"), Delete("events", "E0")],
        expect=[Expect("book", "version", "1"), Expect("events", "E0", None)],
    )
    assert store.get_record("book", "version") == "2"
    with pytest.raises(Conflict):
        store.write_batch([], expect=[Expect("book", "version", "1")])


def test_a_batch_applies_its_operations_in_order(store: Store) -> None:
    # Puts and deletes of one key in turns: the last operation decides.
    store.write_batch(
        [
            Put("vm", "a", "1"),
            Delete("vm", "a"),
            Put("vm", "b", "1"),
            Put("vm", "a", "2"),
            Delete("vm", "b"),
        ]
    )
    assert store.list_records("vm") == [("a", "2")]


def test_a_large_conditional_batch_names_the_one_record_that_exists(store: Store) -> None:
    # A fleet's start writes its generated ids in one batch, each expected absent.
    store.put_record("identity_id", "vm-1500/system/clientId", "taken")
    keys = [f"vm-{n:04d}/system/clientId" for n in range(2000)]
    with pytest.raises(Conflict, match="identity_id/vm-1500/system/clientId"):
        store.write_batch(
            [Put("identity_id", key, "new") for key in keys],
            expect=[Expect("identity_id", key, None) for key in keys],
        )
    assert store.list_records("identity_id") == [("vm-1500/system/clientId", "taken")]
    fresh = [key.replace("clientId", "objectId") for key in keys]
    store.write_batch(
        [Put("identity_id", key, "new") for key in fresh],
        expect=[Expect("identity_id", key, None) for key in fresh],
    )
    assert len(store.list_records("identity_id")) == 2001


def test_sqlite_migrates_on_start_and_refuses_a_newer_schema(tmp_path: Path) -> None:
    import sqlite3

    from openimds.store.sqlite import MIGRATIONS

    path = tmp_path / "state.db"
    old = sqlite3.connect(path)  # a store from before versioning: tables, version 0
    old.executescript(
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
        " PRIMARY KEY (kind, key));"
        "INSERT INTO settings VALUES ('admin_token', 'kept');"
    )
    old.commit()
    old.close()
    os.chmod(path, 0o600)
    store = SqliteStore(str(path))
    assert store.get_setting("admin_token") == "kept"
    store.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    check.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    check.commit()
    check.close()
    with pytest.raises(StoreError, match="newer than this openimds knows"):
        SqliteStore(str(path))


# -- uniqueness decided by the store, and the change log ----------------------------------


def test_a_claim_held_by_another_owner_refuses_the_whole_batch(store: Store) -> None:
    store.write_batch([Put("vm", "a", "1"), Claim("address", "10.0.0.1", "a")])
    with pytest.raises(Taken, match=r"address 10\.0\.0\.1 is held by a") as caught:
        store.write_batch(
            [
                Put("vm", "b", "1"),
                Claim("address", "10.0.0.2", "b"),
                Claim("address", "10.0.0.1", "b"),
            ]
        )
    assert (caught.value.space, caught.value.value, caught.value.holder) == (
        "address",
        "10.0.0.1",
        "a",
    )
    assert store.get_record("vm", "b") is None  # nothing of the refused batch
    assert store.holders("address") == {"10.0.0.1": "a"}
    store.write_batch([Claim("address", "10.0.0.1", "a")])  # claiming again is a no-op
    # Released in the same batch that claims it anew: a VM moving its address to another.
    store.write_batch([Release("address", "a"), Claim("address", "10.0.0.3", "a")])
    store.write_batch([Claim("address", "10.0.0.1", "b")])
    assert store.holders("address") == {"10.0.0.1": "b", "10.0.0.3": "a"}
    assert store.holders("nothing") == {}


def test_a_condition_can_ask_only_that_a_record_exists(store: Store) -> None:
    with pytest.raises(Conflict):
        store.write_batch([Put("vm", "a", "2")], expect=[Expect("vm", "a", PRESENT)])
    assert store.get_record("vm", "a") is None
    store.put_record("vm", "a", "1")
    store.write_batch([Put("vm", "a", "2")], expect=[Expect("vm", "a", PRESENT)])
    assert store.get_record("vm", "a") == "2"


def test_every_change_gets_the_next_position_in_the_log(store: Store) -> None:
    start = store.log_head()
    store.put_setting("admin_token", "t")
    store.write_batch([Put("vm", "a", "1"), Put("vm", "b", "1"), Claim("address", "x", "a")])
    store.delete_record("vm", "b")
    store.put_record_once("ca", "root", "pem")
    store.put_record_once("ca", "root", "other")  # changes nothing: not logged
    assert store.log_head() == start + 5
    changes = store.read_changes(start)
    assert changes.complete and changes.head == start + 5
    assert changes.values == {
        ("setting", "admin_token"): "t",
        ("vm", "a"): "1",
        ("vm", "b"): None,
        ("ca", "root"): "pem",
    }
    later = store.read_changes(start + 3)
    assert later.values == {("vm", "b"): None, ("ca", "root"): "pem"}
    assert store.read_changes(store.log_head()).values == {}


def test_a_pruned_log_says_it_no_longer_reaches_back(store: Store) -> None:
    store.put_record("vm", "a", "1")
    store.put_record("vm", "a", "2")
    store.put_record("vm", "b", "1")
    head = store.log_head()
    store.prune_log(older_than=-1)  # everything is older than that: all but the newest go
    assert store.log_head() == head
    assert not store.read_changes(head - 3).complete
    assert store.read_changes(head - 1).complete
    assert store.read_changes(head - 1).values == {("vm", "b"): "1"}


def _handles(store: Store, url: str, count: int) -> list[Store]:
    """`count` handles on the store's database, as `count` nodes would have (one shared
    handle for memory, which lives in one process)."""
    if isinstance(store, MemoryStore):
        return [store] * count
    return [open_store(url) for _ in range(count)]


@pytest.fixture
def store_url(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> str:
    backend = request.node.callspec.params["store"]
    postgres = request.getfixturevalue("postgres_url") if backend == "postgresql" else ""
    return BACKEND_URLS[backend].format(tmp=tmp_path, postgres=postgres)


def _claim_at_once(
    barrier: threading.Barrier, address: str, won: list[str], node: Store, name: str
) -> None:
    barrier.wait()
    try:
        node.write_batch(
            [Put("vm", name, "{}"), Claim("address", address, name)],
            expect=[Expect("vm", name, None)],
        )
        won.append(name)
    except Taken:
        pass


def test_racing_claims_of_one_address_have_one_winner(store: Store, store_url: str) -> None:
    """Eight writers claim one address for eight VMs at one moment, ten times over:
    each time exactly one batch is applied and the others leave nothing."""
    nodes = _handles(store, store_url, 8)
    try:
        for attempt in range(10):
            address = f"10.1.0.{attempt}"
            barrier = threading.Barrier(len(nodes))
            won: list[str] = []
            claim = functools.partial(_claim_at_once, barrier, address, won)
            threads = [
                threading.Thread(target=claim, args=(node, f"r{attempt}-{n}"))
                for n, node in enumerate(nodes)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(won) == 1, won
            assert store.holders("address")[address] == won[0]
            names = [k for k, _ in store.list_records("vm") if k.startswith(f"r{attempt}-")]
            assert names == won
    finally:
        for node in nodes:
            if node is not store:
                node.close()


def test_racing_adds_of_one_name_have_one_winner(store: Store, store_url: str) -> None:
    nodes = _handles(store, store_url, 6)
    try:
        barrier = threading.Barrier(len(nodes))
        won: list[int] = []

        def add(node: Store, n: int) -> None:
            barrier.wait()
            try:
                node.write_batch([Put("vm", "same0", str(n))], expect=[Expect("vm", "same0", None)])
                won.append(n)
            except Conflict:
                pass

        threads = [threading.Thread(target=add, args=(node, n)) for n, node in enumerate(nodes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1
        assert store.get_record("vm", "same0") == str(won[0])
    finally:
        for node in nodes:
            if node is not store:
                node.close()


def test_log_positions_follow_commit_order_under_concurrent_writers(
    store: Store, store_url: str
) -> None:
    """A reader that has applied up to the head it saw never misses a change committed
    before that head, however the writers interleave."""
    nodes = _handles(store, store_url, 4)
    stop = threading.Event()
    seen: dict[tuple[str, str], str | None] = {}
    position = store.log_head()

    def write(node: Store, n: int) -> None:
        for i in range(40):
            node.write_batch([Put("counter", f"w{n}", str(i))])

    try:
        threads = [threading.Thread(target=write, args=(node, n)) for n, node in enumerate(nodes)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads) or not stop.is_set():
            changes = store.read_changes(position)
            assert changes.complete
            seen.update(changes.values)
            position = changes.head
            if not any(thread.is_alive() for thread in threads):
                stop.set()
        final = store.read_changes(position)
        seen.update(final.values)
        assert {key: value for key, value in seen.items() if key[0] == "counter"} == {
            ("counter", f"w{n}"): "39" for n in range(len(nodes))
        }
    finally:
        for node in nodes:
            if node is not store:
                node.close()

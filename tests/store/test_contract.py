"""One contract, every backend: what a feature may rely on from `runtime.store`."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from openimds.store import Conflict, Delete, Expect, Put, Store, StoreError, open_store
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

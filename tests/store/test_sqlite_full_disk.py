"""SQLite on a disk that is really full: the error says so, and nothing is left open."""

from __future__ import annotations

from pathlib import Path

from openimds.store import Put, StoreError
from openimds.store.sqlite import SqliteStore
from tests.support.disks import fill, tiny_tmpfs


def test_a_batch_too_big_for_the_disk_reports_the_full_disk(tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "disk", size="1m") as disk:
        store = SqliteStore(str(disk / "state.db"))
        try:
            store.put_record("keys", "kept", "before")
            # More than the page cache holds: SQLite writes (and fails) before COMMIT,
            # and rolls the transaction back itself.
            big = [Put("keys", f"k{i}", "x" * 100_000) for i in range(30)]
            try:
                store.write_batch(big)
            except StoreError as exc:
                assert "database or disk is full" in str(exc)
            else:
                raise AssertionError("a 3 MB batch fitted on a 1 MB disk")
            assert store.list_records("keys") == [("kept", "before")]
            fill(disk).unlink()
            store.write_batch([Put("keys", "after", "ok")])
            assert store.get_record("keys", "after") == "ok"
        finally:
            store.close()

"""A server's SQLite state must be private: a directory, database, journal or lock file
that other users may read or write is refused, with the chmod that fixes it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openimds.store.sqlite import SqliteStore, StateNotPrivate, check_location


def _private_state(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    path = folder / "state.db"
    SqliteStore(str(path)).close()
    return path


def test_a_private_state_passes(tmp_path: Path) -> None:
    check_location(str(_private_state(tmp_path)))


def test_a_state_not_created_yet_passes(tmp_path: Path) -> None:
    check_location(str(tmp_path / "new" / "state.db"))


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o770, 0o702])
def test_an_open_directory_is_refused(tmp_path: Path, mode: int) -> None:
    path = _private_state(tmp_path)
    os.chmod(path.parent, mode)
    with pytest.raises(StateNotPrivate) as refused:
        check_location(str(path))
    assert str(refused.value) == (
        f"the state directory {path.parent} is readable or writable by other users "
        f"(mode {mode:04o}); it holds private keys: run `chmod 700 {path.parent}` and start "
        "again"
    )


def test_a_directory_only_others_may_traverse_passes(tmp_path: Path) -> None:
    path = _private_state(tmp_path)
    os.chmod(path.parent, 0o711)
    check_location(str(path))


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", ".lock"])
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_an_open_file_is_refused(tmp_path: Path, suffix: str, mode: int) -> None:
    path = _private_state(tmp_path)
    file = Path(f"{path}{suffix}")
    file.touch()
    os.chmod(file, mode)
    with pytest.raises(StateNotPrivate, match=rf"run `chmod 600 {file}`"):
        check_location(str(path))


def test_a_shared_sticky_directory_is_refused_without_a_chmod_hint(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with pytest.raises(StateNotPrivate) as refused:
        check_location(str(shared / "state.db"))
    assert "shared with other users (mode 1777)" in str(refused.value)
    assert "chmod" not in str(refused.value)
    assert f"--state {shared}/openimds/state.db" in str(refused.value)

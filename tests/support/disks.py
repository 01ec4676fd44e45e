"""A real disk that fills up: a small tmpfs mounted for one test (needs root)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tiny_tmpfs(mount: Path, size: str = "2m") -> Iterator[Path]:
    """Mount a tmpfs of `size` on `mount` (skips the test where that is not allowed)."""
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Take every free block left on the disk; the file that holds them."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as sink:
        for size in (65536, 1):
            with contextlib.suppress(OSError):
                while True:
                    sink.write(b"\0" * size)
    assert os.statvfs(disk).f_bavail == 0
    return filler

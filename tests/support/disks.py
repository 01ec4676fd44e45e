"""Real disks that fail: a small tmpfs that fills up, an ext4 image that turns read-only.

They need root (the test command runs as root: it installs Debian packages) and loop
devices. Where either is missing the test fails with what is missing: a skip would pass a
suite that never tested the failing-disk behaviour."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tiny_tmpfs(mount: Path, size: str = "2m") -> Iterator[Path]:
    """Mount a tmpfs of `size` on `mount`."""
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (needs root): {done.stderr.decode().strip()}")
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


@contextlib.contextmanager
def ext4_disk(image: Path, mount: Path, size: str = "32M") -> Iterator[Path]:
    """A small ext4 filesystem on a loop device, mounted with errors=remount-ro as root
    filesystems usually are."""
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.fail(f"cannot make an ext4 image (e2fsprogs): {made.stderr.decode().strip()}")
    if not _mount_ext4(image, mount):
        pytest.fail("cannot mount an ext4 image on a loop device (needs root and loop devices)")
    os.chmod(mount, 0o700)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def remount_after_repair(image: Path, mount: Path) -> None:
    """What an operator does once the disk is fixed: unmount, fsck, mount again. The loop
    device of the failed mount is released asynchronously: until it is, the image cannot
    be checked or mounted writable, so this waits for it (bounded)."""
    subprocess.run(["umount", str(mount)], check=True, capture_output=True)
    for _ in range(100):
        attached = subprocess.run(
            ["losetup", "-j", str(image)], capture_output=True, text=True, check=False
        )
        if not attached.stdout.strip():
            break
        time.sleep(0.05)
    subprocess.run(["e2fsck", "-fy", str(image)], capture_output=True, check=False)
    assert _mount_ext4(image, mount)
    (mount / "probe").touch()  # writable again
    (mount / "probe").unlink()


def _mount_ext4(image: Path, mount: Path) -> bool:
    # -w: fail rather than fall back to a read-only mount.
    options = "loop,errors=remount-ro"
    done = subprocess.run(
        ["mount", "-w", "-o", options, str(image), str(mount)], capture_output=True, check=False
    )
    return done.returncode == 0


def fail_into_read_only(mount: Path) -> None:
    """Make ext4 meet an error, as a failing disk makes it: with errors=remount-ro the
    kernel turns the filesystem read-only under the running server (open files and all,
    which `mount -o remount,ro` refuses with EBUSY)."""
    source = subprocess.run(
        ["findmnt", "-no", "SOURCE", str(mount)], capture_output=True, text=True, check=True
    ).stdout.strip()
    trigger = Path(f"/sys/fs/ext4/{Path(source).name}/trigger_fs_error")
    if not trigger.exists():
        pytest.fail(f"this kernel has no {trigger}: the read-only case cannot be made")
    trigger.write_text("openimds test\n")
    with pytest.raises(OSError, match="Read-only file system"):
        (mount / "probe").touch()

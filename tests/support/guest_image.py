"""A Debian 12 disk image that boots like an Azure Linux guest: Debian's own cloud-init
(Azure datasource) and waagent, built from Debian's packages with debootstrap.

The image holds nothing about any VM: no user, no key, no hostname, no machine id, no SSH
host keys. A boot gets all of that from openimds, as an Azure guest gets it from Azure.

It is built once per machine and cached outside the repository
(`/var/cache/openimds/guest/<key>/`, or `$OPENIMDS_GUEST_CACHE`), keyed by a hash of the
recipe below (suite, package list, configuration files written into it). A build goes to a
temporary directory that is renamed into place only when complete, so an interrupted build
is never used. Nothing is downloaded but Debian packages, from the machine's own Debian
mirror (`/etc/apt/sources.list*`, or `$OPENIMDS_DEBIAN_MIRROR`).

No loop mount: the root file system is written with `mkfs.ext4 -d`, and QEMU boots the
kernel and initrd copied out of the image's /boot (direct kernel boot, root=/dev/vda).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

SUITE = "bookworm"

# What an Azure image of Debian carries for provisioning, and no more: the agents, the
# cloud kernel, sshd, and what cloud-init's Debian renderer (ifupdown + dhclient, which
# the Azure datasource also uses for its own ephemeral DHCP) and hostname setting
# (hostnamectl over D-Bus) need. curl: the drain script inside the guest.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "linux-image-cloud-amd64",
    "cloud-init",
    "waagent",
    "openssh-server",
    "ifupdown",
    "isc-dhcp-client",
    "iproute2",
    "netbase",
    "e2fsprogs",
    "sudo",
    "curl",
    # debootstrap does not resolve virtual packages: python3-cryptography (cloud-init,
    # waagent) needs python3-cffi-backend-api-*, which this one provides.
    "python3-cffi-backend",
)

# Files written into the image after the packages are installed: path -> content.
FILES: dict[str, str] = {
    "etc/fstab": "/dev/vda / ext4 defaults,errors=remount-ro 0 1\n",
    # Only the loopback interface: cloud-init renders the NIC from what IMDS says.
    "etc/network/interfaces": (
        "auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n"
    ),
    # The guest's own drivers in its initrd, whatever the host that built it has.
    "etc/initramfs-tools/modules": "virtio_pci\nvirtio_blk\nvirtio_net\next4\n",
}

# Edits to /etc/waagent.conf as Debian ships it (Provisioning.Agent=auto there: cloud-init
# provisions and waagent sees it has). No self-update: nothing is downloaded at run time.
WAAGENT_SETTINGS = {"AutoUpdate.Enabled": "n"}

# Bump when the build steps below change in a way the data above does not show.
RECIPE_VERSION = 1

DEFAULT_CACHE = Path("/var/cache/openimds/guest")
DISK_SIZE = "3G"


@dataclass(frozen=True)
class GuestImage:
    """A built image: the root file system and the kernel and initrd to boot it with."""

    directory: Path
    disk: Path
    kernel: Path
    initrd: Path
    manifest: dict[str, object]


def recipe() -> dict[str, object]:
    return {
        "suite": SUITE,
        "packages": sorted(PACKAGES),
        "files": FILES,
        "waagent": WAAGENT_SETTINGS,
        "version": RECIPE_VERSION,
        "size": DISK_SIZE,
    }


def cache_key() -> str:
    encoded = json.dumps(recipe(), sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def cache_root() -> Path:
    return Path(os.environ.get("OPENIMDS_GUEST_CACHE") or DEFAULT_CACHE)


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses (the first `debian` URI that is not the
    security archive)."""
    override = os.environ.get("OPENIMDS_DEBIAN_MIRROR")
    if override:
        return override
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        uris: list[str] = re.findall(r"^URIs:\s*(\S+)", text, re.MULTILINE)
        uris += re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", text, re.MULTILINE)
        for uri in uris:
            if "/debian" in uri and "security" not in uri:
                return uri
    return "http://deb.debian.org/debian"


def cached() -> GuestImage | None:
    """The image for the current recipe if it was built, else None."""
    directory = cache_root() / cache_key()
    manifest = directory / "manifest.json"
    if not manifest.is_file():
        return None
    return GuestImage(
        directory=directory,
        disk=directory / "disk.raw",
        kernel=directory / "vmlinuz",
        initrd=directory / "initrd.img",
        manifest=dict(json.loads(manifest.read_text())),
    )


def ensure_image(*, log: Path | None = None) -> GuestImage:
    """The image for the current recipe, built first if this machine has none. Concurrent
    callers wait for one build (a lock file beside the cache entry)."""
    image = cached()
    if image is not None:
        return image
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    key = cache_key()
    with (root / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        image = cached()
        if image is None:
            _build(root, key, log)
            image = cached()
    assert image is not None
    return image


def _build(root: Path, key: str, log: Path | None) -> None:
    for stale in root.glob(f".build-{key}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = root / f".build-{key}-{os.getpid()}"
    work.mkdir()
    target = work / "rootfs"
    started = time.monotonic()
    sink = log.open("ab") if log else None
    try:
        _debootstrap(target, sink)
        _configure(target, sink)
        kernel, initrd = _boot_files(target)
        shutil.copy2(kernel, work / "vmlinuz")
        shutil.copy2(initrd, work / "initrd.img")
        _mkfs(target, work / "disk.raw", sink)
        shutil.rmtree(target)
        manifest = {
            "key": key,
            "recipe": recipe(),
            "mirror": debian_mirror(),
            "kernel": kernel.name,
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        work.rename(root / key)
    except BaseException:
        _unmount_under(target)
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        if sink:
            sink.close()


def _run(cmd: list[str], sink: IO[bytes] | None, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        ["nice", "-n", "10", *cmd],
        check=True,
        stdout=sink,
        stderr=subprocess.STDOUT if sink is not None else None,
        env=env,
    )


def _debootstrap(target: Path, sink: IO[bytes] | None) -> None:
    (cache_root() / "debs").mkdir(parents=True, exist_ok=True)
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            "--components=main",
            "--include=" + ",".join(PACKAGES),
            # Downloaded packages are kept for the next build (a new recipe).
            f"--cache-dir={cache_root() / 'debs'}",
            SUITE,
            str(target),
            debian_mirror(),
        ],
        sink,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def _configure(target: Path, sink: IO[bytes] | None) -> None:
    for relative, content in FILES.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    conf = target / "etc/waagent.conf"
    text = conf.read_text()
    for name, value in WAAGENT_SETTINGS.items():
        line = f"{name}={value}"
        pattern = re.compile(rf"^#?\s*{re.escape(name)}=.*$", re.MULTILINE)
        text = pattern.sub(line, text) if pattern.search(text) else text + line + "\n"
    conf.write_text(text)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive"}
    _run(["chroot", str(target), "update-initramfs", "-u", "-k", "all"], sink, env=env)
    _run(["chroot", str(target), "apt-get", "clean"], sink, env=env)
    _unmount_under(target)
    # Nothing of the machine that built it, nothing of any VM: systemd makes a machine id
    # at first boot, cloud-init the host keys, the hostname and the users.
    (target / "etc/machine-id").write_text("")
    for path in [
        target / "var/lib/dbus/machine-id",
        target / "etc/hostname",
        target / "etc/resolv.conf",
        *target.glob("etc/ssh/ssh_host_*"),
        *target.glob("var/lib/apt/lists/*_*"),
        *target.glob("var/log/*.log"),
    ]:
        if path.is_file() or path.is_symlink():
            path.unlink()
    hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    (target / "etc/hosts").write_text(hosts)


def _boot_files(target: Path) -> tuple[Path, Path]:
    kernels = sorted((target / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise RuntimeError(f"no kernel in {target / 'boot'}")
    kernel = kernels[-1]
    initrd = target / "boot" / ("initrd.img-" + kernel.name.removeprefix("vmlinuz-"))
    if not initrd.is_file():
        raise RuntimeError(f"no initrd {initrd}")
    return kernel, initrd


def _mkfs(target: Path, disk: Path, sink: IO[bytes] | None) -> None:
    _run(["truncate", "-s", DISK_SIZE, str(disk)], sink)
    _run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(target), str(disk)], sink)


def _unmount_under(target: Path) -> None:
    """Anything debootstrap or a chroot left mounted inside the tree (proc, sys, ...)."""
    resolved = str(target.resolve()) if target.exists() else str(target)
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    for point in sorted((p for p in points if p.startswith(resolved + "/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def main(argv: list[str]) -> int:
    """`scripts/guest-image [--print-key]`: build (or find) the image and print where."""
    if argv[:1] == ["--print-key"]:
        print(cache_key())
        return 0
    if argv:
        print(f"guest-image: unknown argument {argv[0]!r} (expected --print-key)", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("guest-image: building the image needs root (debootstrap, chroot)", file=sys.stderr)
        return 2
    started = time.monotonic()
    was_cached = cached() is not None
    image = ensure_image(log=None)
    took = time.monotonic() - started
    state = "cached" if was_cached else f"built in {took:.0f} s"
    print(f"guest image {image.directory} ({state})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

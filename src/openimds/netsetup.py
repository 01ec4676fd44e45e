"""`openimds net up/down`: put 169.254.169.254/32 on the loopback interface (root only);
with `--wireserver`, 168.63.129.16/32 too (the WireServer's and HostGAPlugin's address,
docs/guests.md)."""

from __future__ import annotations

import os
import shutil
import subprocess

IMDS_HOST = "169.254.169.254"
IMDS_ADDRESS = f"{IMDS_HOST}/32"
WIRESERVER_HOST = "168.63.129.16"


def command(action: str, host: str = IMDS_HOST) -> list[str]:
    verb = "add" if action == "up" else "del"
    return ["ip", "address", verb, f"{host}/32", "dev", "lo"]


def has_address(host: str = IMDS_HOST) -> bool:
    ip = shutil.which("ip")
    if ip is None:
        return False
    out = subprocess.run(
        [ip, "-o", "address", "show", "dev", "lo"], capture_output=True, text=True, check=False
    )
    return f"{host}/32" in out.stdout


def change(action: str, host: str = IMDS_HOST) -> tuple[bool, str]:
    """Apply `up` or `down` for one address; returns (ok, message). Idempotent."""
    cmd = command(action, host)
    if os.geteuid() != 0:
        return False, f"this needs root; run: sudo {' '.join(cmd)}"
    if shutil.which("ip") is None:
        return False, "the `ip` command (iproute2) is not installed"
    present = has_address(host)
    if (action == "up") == present:
        return True, f"{host} is already {'on' if present else 'off'} lo"
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return False, f"{' '.join(cmd)} failed: {result.stderr.strip()}"
    where = "added to" if action == "up" else "removed from"
    return True, f"{host}/32 {where} lo"

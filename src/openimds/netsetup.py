"""`openimds net up/down`: put 169.254.169.254/32 on the loopback interface (root only)."""

from __future__ import annotations

import os
import shutil
import subprocess

IMDS_HOST = "169.254.169.254"
IMDS_ADDRESS = f"{IMDS_HOST}/32"


def command(action: str) -> list[str]:
    verb = "add" if action == "up" else "del"
    return ["ip", "address", verb, IMDS_ADDRESS, "dev", "lo"]


def has_address() -> bool:
    ip = shutil.which("ip")
    if ip is None:
        return False
    out = subprocess.run(
        [ip, "-o", "address", "show", "dev", "lo"], capture_output=True, text=True, check=False
    )
    return "169.254.169.254/32" in out.stdout


def change(action: str) -> tuple[bool, str]:
    """Apply `up` or `down`; returns (ok, message). Idempotent."""
    cmd = command(action)
    if os.geteuid() != 0:
        return False, f"this needs root; run: sudo {' '.join(cmd)}"
    if shutil.which("ip") is None:
        return False, "the `ip` command (iproute2) is not installed"
    present = has_address()
    if (action == "up") == present:
        return True, f"169.254.169.254 is already {'on' if present else 'off'} lo"
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return False, f"{' '.join(cmd)} failed: {result.stderr.strip()}"
    where = "added to" if action == "up" else "removed from"
    return True, f"169.254.169.254/32 {where} lo"

"""`openimds ...` in a subprocess, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any OPENIMDS_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMDS_")}
    return {**env, **(extra or {})}


def run_openimds(
    *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m openimds *args` with a clean environment plus `env`; never raises on a
    non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "openimds", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=clean_environment(env),
        timeout=60,
        check=False,
    )

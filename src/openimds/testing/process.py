"""`openimds serve` as a child process: start it with its output in a log file (a pipe
nobody reads would block the server once full), wait for its readiness line, stop it.
The one place that knows the readiness line's shape; `Serving(subprocess=True)` and the
project's own tests start servers through it."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

READY = re.compile(r"openimds: metadata on (http://\S+); admin on (\S+);")
START_TIMEOUT = 20.0


def start_process(
    cmd: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = START_TIMEOUT,
) -> tuple[subprocess.Popen[bytes], re.Match[str]]:
    """Run `cmd` until it prints the readiness line; the process and the line's match
    (group 1 the metadata URL, group 2 the admin address). A process that exits or stays
    silent past `timeout` is stopped, and the error carries its output."""
    with log.open("wb") as sink:
        proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = READY.search(log.read_text(errors="replace"))
        if match:
            return proc, match
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    output = log.read_text(errors="replace")
    stop_process(proc)
    raise RuntimeError(f"openimds did not start:\n{output}")


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Send `sig` and wait; a process still running after ten seconds is killed."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode

"""One JSON line per request, buffered and written in batches off the request path.

Preformatted by hand (the hot path), in the shape logs.JsonFormatter writes: compact, with
ts, level, logger and event first.

The listener appends a preformatted line to a list; a one-second tick (and a full
buffer) writes the batch. Tokens never appear: lines carry method, path, status, VM,
latency and peer, and the query string only for endpoints whose query holds no secret.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

_FLUSH_AT = 512


class AccessLog:
    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self._lines: list[str] = []
        self.stamp = ""

    def record(
        self,
        method: str,
        path: str,
        status: int,
        vm: str,
        seconds: float,
        peer: str,
        route: str = "",
    ) -> None:
        """One line; an answer a request hook gave (a fault rule: route `hook:<rule>`)
        carries the rule's name, and status 0 when the hook gave no answer."""
        if '"' in path or "\\" in path or not path.isprintable():
            path = json.dumps(path)[1:-1]
        if '"' in vm or "\\" in vm or not vm.isprintable():  # names come from the user's file
            vm = json.dumps(vm)[1:-1]
        self._lines.append(
            f'{{"ts":"{self.stamp}","level":"info","logger":"openimds.access","event":"access",'
            f'"method":"{method}",'
            f'"path":"{path}",'
            f'"status":{status},"vm":"{vm}","ms":{seconds * 1000:.3f},"peer":"{peer}"'
            + (f',"rule":{json.dumps(route[5:])}}}\n' if route[:5] == "hook:" else "}\n")
        )
        if len(self._lines) >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            self.stream.write("".join(lines))
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed stderr must not take the server down

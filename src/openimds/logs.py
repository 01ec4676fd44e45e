"""Structured logging: one compact JSON object per line on stderr, `ts`, `level`, `logger`
and `event` first, for openimds' own loggers and uvicorn's alike. (The access log writes
the same shape itself; the startup line `openimds: metadata on ...` on stdout is a
readiness line, not a log line.)"""

from __future__ import annotations

import json
import logging
import time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        # Structured fields a caller passes as `extra={"fields": {...}}`.
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            # Tracebacks go to the log (with the request id), never onto the wire.
            entry["exception"] = self.formatException(record.exc_info)
        # Compact, like the access log's preformatted lines: one shape for every line.
        return json.dumps(entry, separators=(",", ":"))


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own loggers would print in their format; route them through ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True

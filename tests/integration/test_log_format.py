"""Every log line, whoever writes it (openimds, the access log, uvicorn), is compact JSON
of one shape: ts, level, logger, event, then the line's own fields."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.integration.test_admin_logging import TOKEN, admin_lines, log_lines
from tests.support.server import start_server

STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def test_every_log_line_is_compact_json_of_one_shape(tmp_path: Path) -> None:
    running = start_server(tmp_path, admin_token=TOKEN)
    try:
        assert running.get("/metadata/instance?api-version=2021-02-01").status_code == 200
        assert running.admin("GET", "/vms").status_code == 200
        admin_lines(running, 1)
    finally:
        running.stop()
    lines = log_lines(running.output)
    loggers = set()
    for line in lines:
        entry = json.loads(line)
        assert not re.search(r"\s", STRING.sub('""', line)), line  # compact
        assert list(entry)[:4] == ["ts", "level", "logger", "event"], line
        loggers.add(entry["logger"])
    assert {"openimds.access", "openimds.admin", "uvicorn.error"} <= loggers

"""Access lines stay one JSON object each, whatever the path or the VM name holds."""

from __future__ import annotations

import io
import json

import pytest

from openimds.web.access_log import AccessLog


@pytest.mark.parametrize("vm", ["plain", 'quo"te', "back\\slash", "new\nline", "tab\there\x00"])
def test_every_line_is_json(vm: str) -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    log.record("GET", "/metadata/\n\x1b[31m", 200, vm, 0.001, "127.0.0.1")
    log.flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["vm"] == vm
    assert entry["path"] == "/metadata/\n\x1b[31m"

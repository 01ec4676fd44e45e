from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.config import WriteFile, write_file


@pytest.fixture
def write(tmp_path: Path) -> WriteFile:
    """write(text, name="vm.yaml") -> the path of a new file in tmp_path."""

    def _write(text: str, name: str = "vm.yaml") -> str:
        return write_file(tmp_path, text, name)

    return _write

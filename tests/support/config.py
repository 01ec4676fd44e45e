"""Configuration files written to a temporary directory and loaded as `openimds` would,
with an empty environment unless a test gives one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest

from openimds.config import Config, ConfigError, load_config

FIVE_LINE_VM = """\
instance:
  compute:
    name: tiny
    vmSize: Standard_B1s
    location: westus
"""


class WriteFile(Protocol):
    """The `write` fixture: text into a file of the test's temporary directory."""

    def __call__(self, text: str, name: str = "vm.yaml") -> str: ...


def write_file(directory: Path, text: str, name: str = "vm.yaml") -> str:
    path = directory / name
    path.write_text(text)
    return str(path)


def load(
    path: str | None,
    *,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """`load_config` with no environment variables unless given."""
    return load_config(path, env=env or {}, flags=flags)


def error_of(
    path: str | None,
    *,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> str:
    """The message of the ConfigError that loading must raise."""
    with pytest.raises(ConfigError) as caught:
        load(path, env=env, flags=flags)
    return str(caught.value)


def load_text(directory: Path, text: str, env: Mapping[str, str] | None = None) -> Config:
    """`text` written as vm.yaml and loaded."""
    return load(write_file(directory, text), env=env)

"""Reading the configuration file: a size limit named in the error, JSON parsed as JSON
(fast, with json's line:col errors), YAML with the C loader and the same error form."""

from __future__ import annotations

from pathlib import Path

import pytest

from openimds.config import ConfigError
from openimds.config.loading import MAX_FILE_BYTES, read_file


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        read_file(str(path))
    return str(caught.value)


def test_the_limit_is_sixteen_mebibytes() -> None:
    assert MAX_FILE_BYTES == 16 * 1024 * 1024


def test_a_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing to read if it is not read
    assert error_of(path) == f"{path}: too large ({MAX_FILE_BYTES + 1} bytes; the limit is 16 MiB)"


def test_a_json_file_is_parsed_as_json(tmp_path: Path) -> None:
    path = tmp_path / "vm.json"
    path.write_text('{"name": "a", "instance": {"compute": {"vmSize": "B1s"}}}')
    assert read_file(str(path)) == {"name": "a", "instance": {"compute": {"vmSize": "B1s"}}}


def test_a_json_error_has_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "vm.json"
    path.write_text('{\n  "name": "a"\n  "instance": {}\n}\n')
    assert error_of(path) == f"{path}:3:3: not valid JSON: Expecting ',' delimiter"


def test_content_that_looks_like_json_is_read_whatever_the_name(tmp_path: Path) -> None:
    path = tmp_path / "vm.conf"
    path.write_text('  {"name": "a", "addresses": ["10.0.0.4"]}')
    assert read_file(str(path)) == {"name": "a", "addresses": ["10.0.0.4"]}


def test_broken_content_that_looks_like_json_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "vm.conf"
    path.write_text('{"name": "a",\n "vms": [}')
    message = error_of(path)
    assert message.startswith(f"{path}:2:")
    assert "\n" not in message


def test_a_yaml_flow_mapping_is_still_yaml(tmp_path: Path) -> None:
    path = tmp_path / "vm.yaml"
    path.write_text("{name: a}\n")
    assert read_file(str(path)) == {"name": "a"}


def test_yaml_errors_keep_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "vm.yaml"
    path.write_text("name: a\ninstance: [\n")
    assert error_of(path).startswith(f"{path}:3:1: not valid YAML or JSON: ")

"""VM files as the `vm` commands read them: the file's own shape, settings left out,
one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from openimds.config import ConfigError
from openimds.fleet.vm_file import as_file, dump, name_of, read_vms, vms_in


def _file(tmp_path: Path, text: str, name: str = "vms.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_one_vm_or_a_list_is_sent_as_the_file_gives_it(tmp_path: Path) -> None:
    one = _file(tmp_path, "name: a\naddresses: [127.0.0.1]\n")
    assert read_vms(one) == ({"name": "a", "addresses": ["127.0.0.1"]}, [])
    many = _file(tmp_path, '{"vms": [{"name": "a"}, {"name": "b"}]}', "vms.json")
    payload, ignored = read_vms(many)
    assert [name_of(vm) for vm in vms_in(payload)] == ["a", "b"]
    assert ignored == []


def test_a_whole_configuration_file_gives_its_vms_only(tmp_path: Path) -> None:
    path = _file(tmp_path, "server: {listen: 127.0.0.1:80}\nstate: {path: x}\nvms: [{name: a}]\n")
    assert read_vms(path) == ({"vms": [{"name": "a"}]}, ["server", "state"])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "expected one VM's fields or a `vms` list, got nothing"),
        ("- a\n", "expected one VM's fields or a `vms` list, got a list"),
        ("vms: []\n", "holds no VM (give one VM's fields or a `vms` list)"),
        ("server: {}\n", "holds no VM (give one VM's fields or a `vms` list)"),
        ("name: a\nvms: []\n", "give either a `vms` list or one VM's keys (name), not both"),
    ],
)
def test_a_file_with_no_vm_is_one_clear_line(tmp_path: Path, text: str, problem: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        read_vms(path)
    assert str(caught.value) == f"{path}: {problem}"


def test_broken_yaml_names_its_line_and_column(tmp_path: Path) -> None:
    path = _file(tmp_path, "name: a\ninstance: {compute: [\n")
    with pytest.raises(ConfigError) as caught:
        read_vms(path)
    assert str(caught.value).startswith(f"{path}:3:1: not valid YAML or JSON: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("vm", "name"),
    [
        ({"name": "a", "instance": {"compute": {"name": "b"}}}, "a"),
        ({"instance": {"compute": {"name": "b"}}}, "b"),
        ({"instance": {"compute": {"vmId": "c"}}}, "c"),
        ({"name": 7}, "7"),
        ({"instance": "odd"}, ""),
        ("odd", ""),
    ],
)
def test_the_name_is_the_one_the_server_gives(vm: object, name: str) -> None:
    assert name_of(vm) == name


def test_an_api_answer_becomes_a_file_without_its_revision() -> None:
    view = {"name": "a", "revision": 3, "addresses": ["127.0.0.1"], "instance": {}}
    assert as_file(view) == {"name": "a", "addresses": ["127.0.0.1"], "instance": {}}
    assert dump(as_file(view), as_json=False).startswith("name: a\naddresses:\n")
    assert dump(as_file(view), as_json=True).startswith('{\n  "name": "a",')

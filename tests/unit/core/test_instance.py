"""The fields an api-version's instance document leaves out, next to the newest one's."""

from __future__ import annotations

from openimds.core.instance import Node, absent
from openimds.core.versions import LATEST
from tests.support.imds import reference_vm


def test_only_the_outermost_missing_field_is_named_in_document_order() -> None:
    newest: Node = {"compute": {"a": "1", "b": {"c": "2", "d": "3"}, "e": {"f": "4"}}, "n": {}}
    served: Node = {"compute": {"a": "1", "e": {}}, "n": {}}
    assert absent(newest, served) == ["compute.b", "compute.e.f"]
    assert absent(newest, newest) == []


def test_array_items_are_named_once_with_brackets() -> None:
    newest: Node = {"disks": [{"lun": "0", "size": "1"}, {"lun": "1", "size": "2"}]}
    served: Node = {"disks": [{"lun": "0"}, {"lun": "1"}]}
    assert absent(newest, served) == ["disks[].size"]


def test_the_reference_vm_between_api_versions() -> None:
    vm = reference_vm()
    newest = vm.document(LATEST)
    old = absent(newest, vm.document("2019-11-01"))
    assert "compute.securityProfile" in old  # since 2020-06-01: the section, not its fields
    assert not any(path.startswith("compute.securityProfile.") for path in old)
    assert "compute.userData" in old and "compute.name" not in old
    newer = absent(newest, vm.document("2021-02-01"))
    assert "compute.securityProfile.securityType" in newer  # since 2021-12-13
    assert "compute.userData" not in newer
    assert absent(newest, vm.document(LATEST)) == []

"""format=json|text: parsing, and how a node renders (4)."""

from __future__ import annotations

import pytest

from openimds.core.errors import LeafNeedsText, UnsupportedFormat
from openimds.core.formats import parse_format, render, to_json
from openimds.core.http import JSON, TEXT
from openimds.core.instance import Node
from tests.support.imds import call


def test_json_is_the_default() -> None:
    assert parse_format(None, allow_text=True) == "json"
    assert parse_format("json", allow_text=False) == "json"


def test_text_only_where_route_filtering_exists() -> None:
    assert parse_format("text", allow_text=True) == "text"
    with pytest.raises(UnsupportedFormat):
        parse_format("text", allow_text=False)


@pytest.mark.parametrize("value", ["xml", "", "JSON", "Text", "text ", "json;", "csv"])
def test_other_values_are_refused(value: str) -> None:
    with pytest.raises(UnsupportedFormat):
        parse_format(value, allow_text=True)


@pytest.mark.parametrize("value", ["xml", "", "JSON", "Text", "yaml"])
def test_bad_format_on_the_wire(value: str) -> None:
    response = call(f"/metadata/instance?api-version=2021-02-01&format={value}")
    assert response.status == 400
    assert response.content_type == JSON
    assert response.body == (
        b'{"error":"Bad request. Format \'' + value.encode() + b"' is not supported for this "
        b'request. For more information refer to aka.ms/azureimds"}'
    )


def test_leaf_refuses_json() -> None:
    with pytest.raises(LeafNeedsText):
        render("value", "json")


def test_leaf_text_is_the_raw_value() -> None:
    assert render("value", "text") == (b"value", TEXT)
    assert render("", "text") == (b"", TEXT)


def test_object_text_marks_containers() -> None:
    node: Node = {"a": "1", "b": {"c": "2"}, "d": [], "e": ""}
    assert render(node, "text") == (b"a\nb/\nd/\ne", TEXT)


def test_array_text_lists_indexes() -> None:
    assert render(["x", {"k": "v"}, ["y"]], "text") == (b"0\n1/\n2/", TEXT)


def test_json_is_compact_utf8() -> None:
    assert render({"a": ["b", {"c": "é"}]}, "json") == ('{"a":["b",{"c":"é"}]}'.encode(), JSON)
    assert to_json({"n": 1, "s": "x y"}) == b'{"n":1,"s":"x y"}'


def test_text_is_utf8() -> None:
    assert render({"é": "1"}, "text")[0] == "é".encode()

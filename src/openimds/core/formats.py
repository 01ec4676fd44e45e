"""Rendering a node as IMDS does: compact JSON, or text (docs/compatibility.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

from openimds.core.errors import LeafNeedsText, UnsupportedFormat
from openimds.core.http import JSON, TEXT
from openimds.core.instance import Node

Format = Literal["json", "text"]


def parse_format(value: str | None, *, allow_text: bool) -> Format:
    """`format` defaults to json; text only where route filtering exists."""
    if value is None or value == "json":
        return "json"
    if value == "text" and allow_text:
        return "text"
    raise UnsupportedFormat(value)


def to_json(value: object) -> bytes:
    # Compact and UTF-8 (Azure's docs: "the response is a JSON string"); non-ASCII kept as is.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def render(node: Node, fmt: Format) -> tuple[bytes, str]:
    """Body and content type for a node of the instance tree."""
    if fmt == "json":
        if isinstance(node, str):
            raise LeafNeedsText()
        return to_json(node), JSON
    return _text(node).encode(), TEXT


def _text(node: Node) -> str:
    """A leaf is its raw value; a container lists its children one per line, and a
    child that is itself a container ends with `/` (Azure does not document this;
    docs/compatibility.md)."""
    if isinstance(node, str):
        return node
    if isinstance(node, Mapping):
        items = node.items()
        return "\n".join(k + ("" if isinstance(v, str) else "/") for k, v in items)
    return "\n".join(str(i) + ("" if isinstance(v, str) else "/") for i, v in enumerate(node))

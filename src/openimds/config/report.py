"""How the configuration file is described to people: error messages and JSON Schema.

An error names where the value came from (file, variable or flag), the field path as the
user wrote it, and what is allowed. A file with one VM may leave out the `vms` list; its
errors then read `instance.compute.vmSize`, not `vms[0].instance.compute.vmSize`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from openimds.config.errors import FieldError

# pydantic error types -> what was expected, in the file's own words.
_EXPECTED = {
    "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
    "dict_type": "a mapping",
    "list_type": "a list",
    "string_type": "a string",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "ip_any_address": "an IPv4 or IPv6 address",
}
# Never echo these values back: they are secrets.
_SECRET_PARTS = ("token", "secret", "key_file", "password")


@dataclass
class Sources:
    """Where each setting came from, so an error can point at the right place."""

    file: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    # The file gave one VM's keys at the top instead of a `vms` list.
    shorthand: bool = False

    def origin(self, loc: tuple[str | int, ...]) -> str:
        dotted = ".".join(str(p) for p in loc)
        for path, origin in self.overrides.items():
            if dotted == path or dotted.startswith(path + "."):
                return origin
        return self.file or "built-in demo VM"

    def display(self, loc: tuple[str | int, ...]) -> str:
        """A field path as the user wrote it: `a.b[0].c`."""
        if self.shorthand and loc[:2] == ("vms", 0):
            loc = loc[2:]
        return field_path(loc)


def field_path(loc: tuple[str | int, ...]) -> str:
    """`a.b[0].c`, or `(top level)`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def format_errors(exc: ValidationError, sources: Sources, root: type[BaseModel]) -> str:
    lines = []
    for err in exc.errors():
        cause = err.get("ctx", {}).get("error")
        loc = tuple(err["loc"]) + (cause.loc if isinstance(cause, FieldError) else ())
        where = sources.display(loc)
        lines.append(f"{sources.origin(loc)}: {where}: {explain(err, loc, root)}")
    return "\n".join(lines)


def explain(err: Mapping[str, Any], loc: tuple[str | int, ...], root: type[BaseModel]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = allowed_keys(root, loc[:-1])
        name = str(loc[-1])
        hint = difflib.get_close_matches(name, allowed, n=1)
        text = f"unknown field {name!r}"
        if hint:
            text += f" (did you mean {hint[0]!r}?)"
        return text + f"; allowed: {', '.join(allowed)}"
    if kind == "missing":
        return "required, but not given"
    secret = any(part in str(p) for p in loc for part in _SECRET_PARTS)
    got = "" if secret else f", got {_describe(err.get('input'))}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}{got}"
    if kind == "literal_error":
        return f"expected one of {err['ctx']['expected']}{got}"
    if kind.endswith(("too_short", "too_long")):
        return _length(kind, err.get("ctx") or {}, got)
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind.startswith(("greater_than", "less_than")):
        return message[0].lower() + message[1:] + got
    return message


def _length(kind: str, ctx: Mapping[str, Any], got: str) -> str:
    """`expected at least 1 item, got none`: pydantic's length errors, in the file's words."""
    short = kind.endswith("too_short")
    bound = ctx.get("min_length") if short else ctx.get("max_length")
    unit = ("character" if kind.startswith("string") else "item") + ("" if bound == 1 else "s")
    if not kind.startswith("string") and got:  # a count says more than "a list"
        got = f", got {ctx.get('actual_length') or 'none'}"
    return f"expected {'at least' if short else 'at most'} {bound} {unit}{got}"


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def allowed_keys(root: type[BaseModel], parent: tuple[str | int, ...]) -> list[str]:
    """The field names at a location, for 'unknown field' hints. At the top, a file may
    also hold one VM's keys (the single-VM shorthand)."""
    model: Any = root
    for part in parent:
        if isinstance(part, int):
            continue
        info = _fields(model).get(str(part)) if hasattr(model, "model_fields") else None
        if info is None:
            return []
        model = _model_of(info.annotation)
    if not hasattr(model, "model_fields"):
        return []
    keys = set(_fields(model))
    if not parent and "vms" in keys:
        keys |= set(_model_of(model.model_fields["vms"].annotation).model_fields)
    return sorted(keys)


def _fields(model: Any) -> dict[str, Any]:
    """A model's fields by the name a file or request uses (its alias, if it has one)."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


def _model_of(annotation: Any) -> Any:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        for inner in getattr(candidate, "__args__", ()):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def file_schema(root: type[BaseModel], vm: type[BaseModel]) -> dict[str, Any]:
    """JSON Schema of the file as people write it: the settings sections plus either a
    `vms` list or one VM's keys at the top (never both); `vms` may be left out, which
    serves the built-in demo VM."""
    schema: dict[str, Any] = root.model_json_schema(mode="validation")
    vm_schema = schema["$defs"][vm.__name__]
    schema["properties"].update(vm_schema["properties"])
    schema["required"] = [k for k in schema.get("required", []) if k != "vms"]
    if not schema["required"]:
        del schema["required"]
    schema["not"] = {
        "description": "give either a `vms` list or one VM's keys at the top, not both",
        "required": ["vms"],
        "anyOf": [{"required": [key]} for key in vm_schema["properties"]],
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "openimds configuration"
    return schema

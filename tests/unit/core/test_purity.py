"""core/ stays pure (docs/architecture.md): no sockets, files, database, environment, clock,
randomness or framework. Read every module's imports and calls and refuse the impure.

A new pure stdlib module may join PURE_STDLIB after checking it cannot reach the clock,
the environment, files, the network or randomness; time and ids are injected instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import openimds.core

CORE = Path(openimds.core.__file__).parent
MODULES = sorted(CORE.rglob("*.py"))  # core/ and its subpackages (core/identity/)

# Named in the rule; refused even if someone adds them to PURE_STDLIB.
FORBIDDEN = frozenset(
    {
        "socket",
        "asyncio",
        "sqlite3",
        "os",
        "time",
        "random",
        "secrets",
        "threading",
        "subprocess",
        "httptools",
        "uvloop",
        "starlette",
        "uvicorn",
        "httpx",
        "prometheus_client",
        "pathlib",
        "io",
        "sys",
        "logging",
        "uuid",
        "signal",
        "shutil",
        "tempfile",
        "multiprocessing",
        "concurrent",
        "ssl",
        "urllib.request",
        "http.client",
        "http.server",
        "importlib",
        "builtins",
    }
)
PURE_STDLIB = frozenset(
    {
        "__future__",
        "abc",
        "base64",
        "binascii",
        "bisect",
        "collections",
        "collections.abc",
        "dataclasses",
        "datetime",  # only for formatting an injected `now`; see the call check below
        "enum",
        "fnmatch",  # fnmatchcase only: string matching, no file system
        "functools",
        "hashlib",
        "hmac",
        "heapq",
        "ipaddress",  # parsing and prefix arithmetic only (the proxy's source networks)
        "itertools",
        "json",
        "math",
        "operator",
        "re",
        "string",
        "types",
        "typing",
        "urllib.parse",
    }
)
# Calls that read the clock or draw randomness whatever module they came from.
IMPURE_CALLS = frozenset(
    {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "urandom", "getenv"}
)
IMPURE_BUILTINS = frozenset({"open", "input", "print", "exec", "eval", "__import__"})


def imports_of(tree: ast.AST) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside openimds.core
                found.append("openimds.core")
            else:
                found.append(node.module or "")
    return found


def allowed(module: str) -> bool:
    top = module.partition(".")[0]
    if module in FORBIDDEN or top in FORBIDDEN:
        return False
    if module == "openimds.core" or module.startswith("openimds.core."):
        return True
    return module in PURE_STDLIB


def test_core_has_modules() -> None:
    assert len(MODULES) >= 10


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_imports_are_pure(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    impure = [m for m in imports_of(tree) if not allowed(m)]
    assert not impure, (
        f"core/{path.name} imports {impure}; core must stay pure (docs/architecture.md)"
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_no_clock_randomness_or_io_calls(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    bad: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in IMPURE_CALLS:
            bad.append(f"line {node.lineno}: .{func.attr}()")
        elif isinstance(func, ast.Name) and func.id in IMPURE_BUILTINS:
            bad.append(f"line {node.lineno}: {func.id}()")
    assert not bad, f"core/{path.name} reads the clock, randomness or I/O: {bad}"


@pytest.mark.parametrize(
    ("source", "ok"),
    [
        ("import os", False),
        ("from time import time", False),
        ("import asyncio.events", False),
        ("from openimds.store import open_store", False),
        ("from openimds.config import Config", False),
        ("import yaml", False),
        ("import pydantic", False),
        ("from . import errors", True),
        ("from openimds.core.http import Request", True),
        ("import json", True),
        ("from collections.abc import Mapping", True),
    ],
)
def test_the_checker_itself(source: str, ok: bool) -> None:
    assert all(allowed(m) for m in imports_of(ast.parse(source))) is ok

"""The core's answers for the reference VM equal tests/golden/, byte for byte.

A difference means the contract changed: if the change is intended, run `scripts/golden`,
read the diff against Azure's documentation and docs/compatibility.md, and commit the new
files with the change.
"""

from __future__ import annotations

import pytest

from tests.support.golden import GOLDEN_DIR, Case, cases, render
from tests.support.imds import call

CASES = cases()


def test_no_stray_golden_files() -> None:
    on_disk = {p.relative_to(GOLDEN_DIR).as_posix() for p in GOLDEN_DIR.rglob("*.*")}
    assert on_disk == {case.file for case in CASES}, "run scripts/golden and review the diff"


def test_every_api_version_has_a_full_document() -> None:
    full = [c for c in CASES if c.file.endswith("/instance.json")]
    assert len(full) == 35


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
def test_golden(case: Case) -> None:
    expected = (GOLDEN_DIR / case.file).read_bytes()
    assert render(case) == expected, f"{case.file} differs; see scripts/golden"
    status = call(case.target, case.method, case.headers).status
    if case.file.startswith("errors/"):
        assert case.file.split(".")[-2] == str(status)
    else:
        assert status == 200

"""Golden response files: the contract for the reference VM, body byte for byte.

Layout: tests/golden/<api-version>/<slug>.<json|txt> for answers to versioned requests,
tests/golden/unversioned/ for /metadata/versions, and tests/golden/errors/<slug>.<status>.json
for error bodies. The slug is the path below /metadata with `/` turned into `-`.
`scripts/golden` rewrites every file from the core; tests/unit/core/test_golden.py
compares. Review a regenerated file against Azure's documentation before committing it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from openimds.core.versions import GENERAL_VERSIONS
from tests.support.imds import METADATA, call

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"


@dataclass(frozen=True)
class Case:
    file: str  # relative to GOLDEN_DIR
    target: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = METADATA


def _slug(path: str) -> str:
    return path.removeprefix("/metadata/").strip("/").replace("/", "-")


def _answer(version: str, path: str, fmt: str | None) -> Case:
    query = f"?api-version={version}" + (f"&format={fmt}" if fmt else "")
    ext = "txt" if fmt == "text" else "json"
    return Case(f"{version}/{_slug(path)}.{ext}", path + query)


# A handful of paths x formats, at versions where the schema changes shape.
SAMPLED_VERSIONS = ("2017-04-02", "2019-06-04", "2021-02-01", "2025-04-07")
SAMPLED = (
    ("/metadata/instance", "text"),
    ("/metadata/instance/compute", None),
    ("/metadata/instance/compute", "text"),
    ("/metadata/instance/network", None),
    ("/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress", "text"),
    ("/metadata/instance/network/interface/0/macAddress", "text"),
    ("/metadata/instance/compute/vmId", "text"),
)
LATER = (
    ("2019-06-04", "/metadata/instance/compute/tags", "text"),
    ("2019-06-04", "/metadata/instance/compute/tagsList", None),
    ("2021-02-01", "/metadata/instance/compute/storageProfile", None),
    ("2021-02-01", "/metadata/instance/compute/userData", "text"),
    ("2025-04-07", "/metadata/instance/compute/storageProfile", None),
    ("2025-04-07", "/metadata/instance/compute/physicalZone", "text"),
    ("2020-10-01", "/metadata/loadbalancer", None),
    ("2025-04-07", "/metadata/loadbalancer", None),
)
ERRORS = (
    ("missing-api-version", "/metadata/instance", METADATA),
    ("latest-api-version", "/metadata/instance?api-version=latest", METADATA),
    ("bare-metadata", "/metadata", METADATA),
    ("missing-metadata-header", "/metadata/instance?api-version=2021-02-01", ()),
    (
        "x-forwarded-for",
        "/metadata/instance?api-version=2021-02-01",
        (*METADATA, ("x-forwarded-for", "10.0.0.1")),
    ),
    ("leaf-without-text", "/metadata/instance/compute/vmId?api-version=2021-02-01", METADATA),
    ("bad-format", "/metadata/instance?api-version=2021-02-01&format=xml", METADATA),
    ("no-such-element", "/metadata/instance/compute/nosuch?api-version=2021-02-01", METADATA),
    ("field-too-new", "/metadata/instance/compute/userData?api-version=2020-12-01", METADATA),
    (
        "duplicate-parameter",
        "/metadata/instance?api-version=2021-02-01&api-version=2021-02-01",
        METADATA,
    ),
    ("unknown-path", "/metadata/nosuch?api-version=2021-02-01", METADATA),
    (
        "loadbalancer-unknown-parameter",
        "/metadata/loadbalancer?api-version=2020-10-01&x=1",
        METADATA,
    ),
)


def cases() -> list[Case]:
    out = [_answer(v, "/metadata/instance", None) for v in GENERAL_VERSIONS]
    out += [_answer(v, path, fmt) for v in SAMPLED_VERSIONS for path, fmt in SAMPLED]
    out += [_answer(v, path, fmt) for v, path, fmt in LATER]
    out.append(Case("unversioned/versions.json", "/metadata/versions"))
    for name, target, headers in ERRORS:
        status = call(target, headers=headers).status
        out.append(Case(f"errors/{name}.{status}.json", target, headers=headers))
    out.append(
        Case(
            "errors/method-not-allowed.405.json",
            "/metadata/instance?api-version=2021-02-01",
            method="POST",
        )
    )
    return out


def render(case: Case) -> bytes:
    return call(case.target, case.method, case.headers).body


def write_all() -> int:
    """Rewrite every golden file; remove ones no case produces. Returns the count."""
    wanted = {case.file: render(case) for case in cases()}
    for stale in GOLDEN_DIR.rglob("*.*"):
        if stale.relative_to(GOLDEN_DIR).as_posix() not in wanted:
            stale.unlink()
    for name, body in wanted.items():
        path = GOLDEN_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return len(wanted)


if __name__ == "__main__":
    count = write_all()
    print(f"wrote {count} golden files under {GOLDEN_DIR}", file=sys.stderr)

"""GET /metadata/versions (2.6, 10): unversioned, every general api-version, JSON only."""

from __future__ import annotations

import json

import pytest

from openimds.core.http import JSON
from openimds.core.versions import GENERAL_VERSIONS
from tests.support.imds import call


def test_versions_lists_every_general_version_ascending() -> None:
    response = call("/metadata/versions")
    assert (response.status, response.content_type) == (200, JSON)
    assert (
        response.body
        == json.dumps({"apiVersions": list(GENERAL_VERSIONS)}, separators=(",", ":")).encode()
    )
    listed = json.loads(response.body)["apiVersions"]
    assert listed == sorted(listed)
    assert len(listed) == 35
    assert response.cacheable


@pytest.mark.parametrize("query", ["", "?api-version=2021-02-01", "?api-version=latest"])
def test_versions_needs_no_api_version(query: str) -> None:
    assert call(f"/metadata/versions{query}").status == 200


def test_versions_has_no_text_format() -> None:
    assert call("/metadata/versions?format=json").status == 200
    assert call("/metadata/versions?format=text").status == 400

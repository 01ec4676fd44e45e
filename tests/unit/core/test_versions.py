"""api-versions: the list, the newest three, and Azure's error for anything else (2.1-2.6)."""

from __future__ import annotations

import json

import pytest

from openimds.core import versions
from openimds.core.endpoint import require_version
from openimds.core.errors import InvalidApiVersion
from openimds.core.http import JSON
from tests.support.imds import INVALID_VERSION_BODY, call, request

# Azure's list of api-versions, transcribed newest first as its documentation lists them.
REFERENCE_GENERAL = [
    "2025-04-07",
    "2024-07-17",
    "2024-03-15",
    "2023-11-15",
    "2023-07-01",
    "2021-12-13",
    "2021-11-15",
    "2021-11-01",
    "2021-10-01",
    "2021-08-01",
    "2021-05-01",
    "2021-03-01",
    "2021-02-01",
    "2021-01-01",
    "2020-12-01",
    "2020-10-01",
    "2020-09-01",
    "2020-07-15",
    "2020-06-01",
    "2019-11-01",
    "2019-08-15",
    "2019-08-01",
    "2019-06-04",
    "2019-06-01",
    "2019-04-30",
    "2019-03-11",
    "2019-02-01",
    "2018-10-01",
    "2018-04-02",
    "2018-02-01",
    "2017-12-01",
    "2017-10-01",
    "2017-08-01",
    "2017-04-02",
    "2017-03-01",
]

# 2.2: the scheduled-events list, which the general list does not share.
REFERENCE_SCHEDULED_EVENTS = [
    "2017-03-01",
    "2017-08-01",
    "2017-11-01",
    "2019-01-01",
    "2019-04-01",
    "2019-08-01",
    "2020-07-01",
]

NOT_GENERAL = [
    "latest",
    "{latest}",
    "LATEST",
    "",
    " 2021-02-01",
    "2021-02-01 ",
    "2021-2-1",
    "2021-02-02",
    "2099-01-01",
    "2016-01-01",
    "20210201",
    # Scheduled-events-only versions are not general versions (2.2).
    "2017-11-01",
    "2019-01-01",
    "2019-04-01",
    "2020-07-01",
]


def test_general_list_matches_the_reference() -> None:
    assert len(REFERENCE_GENERAL) == 35
    assert list(versions.GENERAL_VERSIONS) == list(reversed(REFERENCE_GENERAL))
    assert frozenset(REFERENCE_GENERAL) == versions.GENERAL_SET
    assert versions.LATEST == "2025-04-07"


def test_newest_three_newest_first() -> None:
    # Live Azure (July 2025): exactly three, newest first.
    assert versions.NEWEST_VERSIONS == ("2025-04-07", "2024-07-17", "2024-03-15")


def test_scheduled_events_list_matches_the_reference() -> None:
    assert list(versions.SCHEDULED_EVENTS_VERSIONS) == REFERENCE_SCHEDULED_EVENTS


def test_endpoint_minimums() -> None:
    assert versions.INSTANCE_MIN == "2017-03-01"
    assert versions.ATTESTED_MIN == "2018-10-01"
    assert versions.IDENTITY_MIN == "2018-02-01"
    assert versions.LOADBALANCER_MIN == "2020-10-01"


@pytest.mark.parametrize("version", REFERENCE_GENERAL)
def test_every_general_version_is_served(version: str) -> None:
    assert version in versions.GENERAL_SET
    response = call(f"/metadata/instance?api-version={version}")
    assert response.status == 200
    assert response.content_type == JSON
    assert set(json.loads(response.body)) == {"compute", "network"}


@pytest.mark.parametrize("version", NOT_GENERAL)
def test_anything_else_gets_azures_version_error(version: str) -> None:
    assert version not in versions.GENERAL_SET
    response = call(f"/metadata/instance?api-version={version}")
    assert (response.status, response.body) == (400, INVALID_VERSION_BODY)
    assert response.content_type == JSON


@pytest.mark.parametrize(
    "target",
    [
        "/metadata/instance",
        "/metadata/instance?format=json",
        "/metadata/instance/compute/vmId?format=text",
        "/metadata/instance?apiversion=2021-02-01",
        "/metadata/instance?Api-Version=2021-02-01",
        "/metadata/instance?api-version",
        "/metadata/instance?api-version=",
        "/metadata/loadbalancer",
    ],
)
def test_missing_version_gets_the_same_body(target: str) -> None:
    response = call(target)
    assert (response.status, response.body) == (400, INVALID_VERSION_BODY)


def test_version_error_body_shape() -> None:
    body = json.loads(call("/metadata/instance?api-version=latest").body)
    assert list(body) == ["error", "newest-versions"]
    assert body["newest-versions"] == REFERENCE_GENERAL[:3]


def test_percent_encoded_version_is_decoded() -> None:
    # Query strings arrive urlencoded; %2D is "-".
    assert call("/metadata/instance?api-version=2021%2D02%2D01").status == 200


def test_require_version_enforces_the_minimum() -> None:
    assert require_version(request("/x?api-version=2020-10-01"), "2020-10-01") == "2020-10-01"
    with pytest.raises(InvalidApiVersion):
        require_version(request("/x?api-version=2020-09-01"), "2020-10-01")
    with pytest.raises(InvalidApiVersion):
        require_version(request("/x?api-version=2019-04-01"), "2017-03-01")
    allowed = frozenset(REFERENCE_SCHEDULED_EVENTS)
    assert require_version(request("/x?api-version=2019-04-01"), "2017-03-01", allowed)

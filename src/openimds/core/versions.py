"""The api-versions IMDS accepts, as data; the policy is in docs/compatibility.md."""

from __future__ import annotations

from typing import Final

# All general api-versions, oldest first, as /metadata/versions lists them.
GENERAL_VERSIONS: Final[tuple[str, ...]] = (
    "2017-03-01",
    "2017-04-02",
    "2017-08-01",
    "2017-10-01",
    "2017-12-01",
    "2018-02-01",
    "2018-04-02",
    "2018-10-01",
    "2019-02-01",
    "2019-03-11",
    "2019-04-30",
    "2019-06-01",
    "2019-06-04",
    "2019-08-01",
    "2019-08-15",
    "2019-11-01",
    "2020-06-01",
    "2020-07-15",
    "2020-09-01",
    "2020-10-01",
    "2020-12-01",
    "2021-01-01",
    "2021-02-01",
    "2021-03-01",
    "2021-05-01",
    "2021-08-01",
    "2021-10-01",
    "2021-11-01",
    "2021-11-15",
    "2021-12-13",
    "2023-07-01",
    "2023-11-15",
    "2024-03-15",
    "2024-07-17",
    "2025-04-07",
)
GENERAL_SET: Final[frozenset[str]] = frozenset(GENERAL_VERSIONS)

# Azure's api-version error lists the three newest versions, newest first.
NEWEST_VERSIONS: Final[tuple[str, ...]] = tuple(reversed(GENERAL_VERSIONS[-3:]))
LATEST: Final[str] = GENERAL_VERSIONS[-1]

# Scheduled events keep an api-version list of their own; 2017-03-01 was the preview.
SCHEDULED_EVENTS_VERSIONS: Final[tuple[str, ...]] = (
    "2017-03-01",
    "2017-08-01",
    "2017-11-01",
    "2019-01-01",
    "2019-04-01",
    "2019-08-01",
    "2020-07-01",
)

# The first api-version each endpoint accepts; the instance API takes the whole general list.
INSTANCE_MIN: Final[str] = "2017-03-01"
ATTESTED_MIN: Final[str] = "2018-10-01"
IDENTITY_MIN: Final[str] = "2018-02-01"
LOADBALANCER_MIN: Final[str] = "2020-10-01"

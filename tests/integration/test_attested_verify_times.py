"""`attested verify --at` takes the time forms `events` takes: RFC 3339 with Z or an
offset, RFC 1123, and times relative to now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from tests.support.attested import fetch_answer
from tests.support.server import RunningServer

TOMORROW = datetime.now(UTC) + timedelta(days=1)


@pytest.mark.parametrize(
    "at",
    [
        TOMORROW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        TOMORROW.astimezone(timezone(timedelta(hours=1))).isoformat(),
        format_datetime(TOMORROW, usegmt=True),
    ],
)
def test_an_absolute_time_with_a_zone_is_checked(live: RunningServer, at: str) -> None:
    # A day from now: the certificates are valid, the six-hour document is not.
    answer = fetch_answer(live, nonce="at1")
    result = live.cli("attested", "verify", "--no-fetch", "--at", at, "-", stdin=answer)
    assert result.returncode == 1, result.stderr
    assert "failed at expiry" in result.stderr


def test_a_relative_time_counts_from_now(live: RunningServer) -> None:
    answer = fetch_answer(live, nonce="at2")
    inside = live.cli("attested", "verify", "--no-fetch", "--at", "+1m", "-", stdin=answer)
    assert inside.returncode == 0, inside.stderr
    after = live.cli("attested", "verify", "--no-fetch", "--at", "+7h", "-", stdin=answer)
    assert after.returncode == 1
    assert "failed at expiry" in after.stderr


def test_a_time_without_a_zone_is_a_usage_error(live: RunningServer) -> None:
    answer = fetch_answer(live, nonce="at3")
    result = live.cli("attested", "verify", "--at", "2099-01-01T00:00:00", "-", stdin=answer)
    assert result.returncode == 2
    assert "has no time zone; add Z or an offset" in result.stderr

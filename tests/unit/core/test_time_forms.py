"""One parser for the times operators type (events and attested verify)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from openimds.core.timestamps import TimeFormError, parse_time

BASE = datetime(2025, 11, 24, 16, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-24T16:10:00Z", BASE + 600),
        ("2025-11-24T16:10:00.5Z", BASE + 600.5),
        ("2025-11-24T17:10:00+01:00", BASE + 600),
        ("2025-11-24 16:10:00Z", BASE + 600),
        ("Mon, 24 Nov 2025 16:10:00 GMT", BASE + 600),
        ("+1h30m", BASE + 5400),
        ("now", BASE),
        (90, BASE + 90),
    ],
)
def test_time_forms(text: str | float, expected: float) -> None:
    assert parse_time(text, BASE) == pytest.approx(expected)


def test_a_time_without_a_zone_is_refused_with_a_hint() -> None:
    with pytest.raises(TimeFormError, match="has no time zone; add Z or an offset"):
        parse_time("2025-11-24T16:10:00", BASE)


@pytest.mark.parametrize("text", ["soon", "+5x", "", "-5m", "2025-13-01T00:00:00Z"])
def test_not_a_time(text: str) -> None:
    with pytest.raises(TimeFormError, match="not a time"):
        parse_time(text, BASE)


@pytest.mark.parametrize(
    "text",
    [
        "Mon, 24 Nov 2025 16:10:00 GMT",
        "24 Nov 2025 16:10:00 UTC",
        "Mon, 24 Nov 2025 17:10:00 +0100",
        "mon, 24 nov 2025 11:10:00 -0500",
    ],
)
def test_rfc1123_forms(text: str) -> None:
    assert parse_time(text, BASE) == BASE + 600


def test_rfc1123_without_a_zone_is_refused() -> None:
    with pytest.raises(TimeFormError, match="no time zone"):
        parse_time("Mon, 24 Nov 2025 16:10:00", BASE)


@pytest.mark.parametrize("text", ["Mon, 32 Nov 2025 16:10:00 GMT", "Mon, 24 Foo 2025 16:10:00 GMT"])
def test_rfc1123_out_of_range(text: str) -> None:
    with pytest.raises(TimeFormError, match="not a time"):
        parse_time(text, BASE)

"""A 20-second smoke of scripts/soak (which runs 10 minutes): the whole mix, events
scheduled and approved beside it, at 80% of the measured maximum, with no unintended
answer, no descriptor growth and RSS growth after the warm-up under 5%."""

from __future__ import annotations

import pytest

from tests.stress import soak


@pytest.mark.slow
def test_a_short_soak_passes() -> None:
    summary = soak.run(minutes=20 / 60, rate=None, threads=4, window=4.0, probe=2.0)
    assert summary["ok"], {k: v for k, v in summary.items() if k != "windows"}
    assert summary["unintended_answers"] == 0
    windows = summary["windows"]
    assert isinstance(windows, list) and len(windows) == 5
    assert all(row["requests"] > 0 for row in windows)


def test_unintended_answers_and_growth_fail_the_verdict() -> None:
    rows: list[dict[str, object]] = [
        {"t": t, "requests": 10, "p99_ms": 1.0, "rss": 100_000 + t * 10, "fds": 20}
        for t in range(0, 100, 10)
    ]
    assert soak._verdict(rows, [], warm_up=20)["ok"]
    assert not soak._verdict(rows, ["token: 429"], warm_up=20)["ok"]
    rows[-1]["rss"] = 200_000
    assert not soak._verdict(rows, [], warm_up=20)["ok"]
    rows[-1]["rss"], rows[-1]["fds"] = 100_000, 25
    assert not soak._verdict(rows, [], warm_up=20)["ok"]

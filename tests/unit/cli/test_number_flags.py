"""Every flag that takes seconds refuses NaN, infinities and negative numbers (and 0 where
it means nothing) before any server is called: exit 2, one error line naming the flag,
never a traceback."""

from __future__ import annotations

import pytest

from tests.support.cli import run_openimds

# Nothing listens there: a flag that got through would fail on the call instead.
_UNREACHABLE = {"OPENIMDS_ADMIN_LISTEN": "127.0.0.1:9", "OPENIMDS_ADMIN_TOKEN": "t" * 32}

_CASES = [
    (("faults", "add", "--latency"), "--latency", "nan"),
    (("faults", "add", "--latency"), "--latency", "inf"),
    (("faults", "add", "--latency"), "--latency", "-1"),
    (("faults", "add", "--latency"), "--latency", "0.1-nan"),
    (("faults", "add", "--status", "500", "--window"), "--window", "nan"),
    (("faults", "add", "--status", "500", "--window"), "--window", "-3"),
    (("faults", "add", "--status", "500", "--after"), "--after", "inf"),
    (("faults", "boot", "--seconds"), "--seconds", "nan"),
    (("faults", "boot", "--seconds"), "--seconds", "-inf"),
    (("events", "schedule", "Reboot", "--complete-after"), "--complete-after", "nan"),
    (("events", "schedule", "Reboot", "--complete-after"), "--complete-after", "-1"),
    (("capture", "--timeout"), "--timeout", "-1"),
    (("capture", "--timeout"), "--timeout", "nan"),
    (("capture", "--timeout"), "--timeout", "0"),
    (("capture", "--timeout"), "--timeout", "soon"),
]


@pytest.mark.parametrize(("command", "flag", "value"), _CASES)
def test_a_bad_number_of_seconds_is_refused_naming_the_flag(
    command: tuple[str, ...], flag: str, value: str
) -> None:
    result = run_openimds(*command, value, env=_UNREACHABLE)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert f"'{flag}'" in errors[0]
    assert "seconds" in errors[0]


def test_a_good_number_reaches_the_call() -> None:
    # The flag is accepted; what fails is reaching the (absent) server.
    result = run_openimds("faults", "boot", "--seconds", "0", env=_UNREACHABLE)
    assert result.returncode == 1
    assert "cannot reach the admin API" in result.stderr

"""Configuration errors name the right thing: the flag as typed, a clash of listeners as
a configuration error, a file in the way of the state directory."""

from __future__ import annotations

from typing import Any

import pytest

from openimds.config import ConfigError, load_config


def error_of(flags: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(None, env={}, flags=flags)
    return str(caught.value)


@pytest.mark.parametrize(
    ("setting", "value", "flag"),
    [
        ("admin.listen", "foo", "--admin-listen"),
        ("server.listen", "foo", "--listen"),
        ("state.path", 7, "--state"),
        ("admin.token", "short", "--token"),
        ("server.rate_limit", "fast", "--rate-limit"),
    ],
)
def test_a_flag_error_names_the_flag_as_typed(setting: str, value: Any, flag: str) -> None:
    assert error_of({setting: value}).startswith(f"flag {flag}: {setting}: ")

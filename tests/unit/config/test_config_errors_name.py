"""Configuration errors name the right thing: the flag as typed, a clash of listeners as
a configuration error, a file in the way of the state directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openimds.config import ConfigError, load_config
from openimds.config.listen import parse_listen
from openimds.store import StoreError, open_store


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


@pytest.mark.parametrize(
    ("metadata", "admin"),
    [
        ("127.0.0.1:8090", "127.0.0.1:8090"),
        ("[::1]:8090", "[::1]:8090"),
        ("0.0.0.0:8090", "127.0.0.1:8090"),
        ("127.0.0.1:8090", "0.0.0.0:8090"),
    ],
)
def test_both_listeners_on_one_address_is_a_configuration_error(metadata: str, admin: str) -> None:
    message = error_of({"server.listen": metadata, "admin.listen": admin})
    assert "the metadata and admin listeners need different addresses" in message
    assert message.startswith("flag --admin-listen: admin.listen: ")


@pytest.mark.parametrize(
    ("metadata", "admin"),
    [
        ("127.0.0.1:0", "127.0.0.1:0"),  # each gets its own free port
        ("127.0.0.1:8090", "127.0.0.1:8091"),
        ("127.0.0.1:8090", "127.0.0.2:8090"),
        ("127.0.0.1:8090", "[::1]:8090"),
        ("127.0.0.1:8090", "unix:/tmp/admin.sock"),
    ],
)
def test_listeners_that_do_not_clash(metadata: str, admin: str) -> None:
    config = load_config(None, env={}, flags={"server.listen": metadata, "admin.listen": admin})
    assert str(config.admin.listen) == admin


def test_the_metadata_listener_is_never_a_unix_socket() -> None:
    message = error_of({"server.listen": "unix:/tmp/metadata.sock"})
    assert message.startswith("flag --listen: server.listen: ")
    assert "HOST:PORT" in message


def test_a_file_in_the_way_of_the_state_directory(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    for path in (tmp_path / "plain" / "state.db", tmp_path / "plain" / "deeper" / "state.db"):
        with pytest.raises(StoreError) as caught:
            open_store(str(path))
        assert str(caught.value) == (
            f"state database {path}: cannot create its directory {path.parent}: "
            f"{tmp_path / 'plain'} is a file, not a directory"
        )


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1:8081", True),
        ("127.0.0.2:8081", True),
        ("[::1]:8081", True),
        ("localhost:8081", True),
        ("unix:/run/openimds/admin.sock", True),
        ("0.0.0.0:8081", False),
        ("[::]:8081", False),
        ("10.0.0.4:8081", False),
        ("admin.example.com:8081", False),
    ],
)
def test_which_admin_addresses_only_this_host_reaches(address: str, local: bool) -> None:
    assert parse_listen(address).is_local is local

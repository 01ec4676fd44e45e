"""Listen addresses: parsed once into a value, written back the same way; what is said
about anything else."""

from __future__ import annotations

import pytest

from openimds.config import ListenAddress, parse_listen
from tests.support.config import WriteFile, error_of


@pytest.mark.parametrize(
    ("listen", "problem"),
    [
        ("localhost", "expected HOST:PORT"),
        ("127.0.0.1:http", "expected HOST:PORT"),
        ("127.0.0.1:70000", "expected HOST:PORT"),
        (":8080", "expected HOST:PORT"),
        ("unix:", "a Unix socket needs a path"),
    ],
)
def test_bad_listen_addresses(write: WriteFile, listen: str, problem: str) -> None:
    path = write(f'admin:\n  listen: "{listen}"\n')
    message = error_of(path)
    assert message.startswith(f"{path}: admin.listen: {problem}")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("127.0.0.1:8080", ListenAddress("127.0.0.1", 8080)),
        ("0.0.0.0:0", ListenAddress("0.0.0.0", 0)),
        ("[::1]:8081", ListenAddress("::1", 8081)),
        ("[::]:80", ListenAddress("::", 80)),
        ("localhost:65535", ListenAddress("localhost", 65535)),
        ("unix:/run/openimds/admin.sock", ListenAddress(path="/run/openimds/admin.sock")),
    ],
)
def test_forms_round_trip(text: str, value: ListenAddress) -> None:
    assert parse_listen(text) == value
    assert str(value) == text
    assert parse_listen(str(value)) == value


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("localhost", "expected HOST:PORT"),
        (":8080", "expected HOST:PORT"),
        ("127.0.0.1:http", "expected HOST:PORT"),
        ("127.0.0.1:70000", "expected HOST:PORT"),
        ("unix:", "a Unix socket needs a path"),
    ],
)
def test_bad_forms_say_what_is_expected(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_listen(text)


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("0.0.0.0:8081", "http://127.0.0.1:8081"),
        ("[::]:8081", "http://[::1]:8081"),
        ("[fd00::5]:8081", "http://[fd00::5]:8081"),
        ("unix:/tmp/a.sock", None),
    ],
)
def test_a_local_client_reaches_a_wildcard_bind_on_loopback(text: str, url: str | None) -> None:
    assert parse_listen(text).local_url() == url

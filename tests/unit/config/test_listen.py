"""Listen addresses: HOST:PORT or unix:PATH, and what is said about anything else."""

from __future__ import annotations

import pytest

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

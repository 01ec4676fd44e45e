"""The pytest plugin (registered by the `pytest11` entry point `openimds`): the `imds`
fixture, a server per test on ephemeral loopback ports, with azure-identity and msal
pointed at it for the test's duration only (docs/testing.md).

    def test_token(imds):
        token = ManagedIdentityCredential().get_token("https://vault.azure.net/.default")

`--imds-subprocess` (or `imds_subprocess = true` in the ini file) runs each server as a
child process instead of a thread of the test process. `@pytest.mark.imds(vm={...},
config={...})` chooses the VM and settings of one test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from openimds.testing.embedded import Imds, Serving

# Variables that would make the SDKs pick another token source over the VM endpoint.
OTHER_SOURCES = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("openimds")
    group.addoption(
        "--imds-subprocess",
        action="store_true",
        default=None,
        help="run the imds fixture's server as a subprocess instead of a thread",
    )
    parser.addini("imds_subprocess", "imds fixture: server in a subprocess", type="bool")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "imds(vm=None, config=None): the VM and settings of the imds fixture's server"
    )


@pytest.fixture
def imds(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Imds]:
    """An openimds server for this test; the SDKs' environment points at it."""
    marker = request.node.get_closest_marker("imds")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    flag = request.config.getoption("--imds-subprocess")
    use_subprocess = bool(flag if flag is not None else request.config.getini("imds_subprocess"))
    options.setdefault("subprocess", use_subprocess)
    with Serving(**options) as server:
        for name in OTHER_SOURCES:
            monkeypatch.delenv(name, raising=False)
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        # Loopback must never go through a proxy the environment configures.
        no_proxy = [p for p in (os.environ.get("NO_PROXY"), "127.0.0.1", "localhost") if p]
        monkeypatch.setenv("NO_PROXY", ",".join(no_proxy))
        yield server

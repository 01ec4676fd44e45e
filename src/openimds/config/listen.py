"""A listen address, parsed once: `HOST:PORT`, `[v6]:PORT` or `unix:PATH`.

The configuration holds these values, so the listeners, the CLI's admin client and the
attested-data issuer URL all read one parsed form instead of splitting strings apart.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

UNIX_PREFIX = "unix:"
# Binds that reach every interface; from this host they are reached on loopback.
WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where a listener binds. `path` is set for a Unix socket; `host`/`port` otherwise
    (`host` without brackets, `port` 0 for any free port)."""

    host: str = ""
    port: int = 0
    path: str | None = None

    @property
    def is_unix(self) -> bool:
        return self.path is not None

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    @property
    def is_local(self) -> bool:
        """Only this host can reach it: a Unix socket or a loopback address."""
        if self.path is not None or self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: it may resolve to anything
            return False

    def __str__(self) -> str:
        if self.path is not None:
            return UNIX_PREFIX + self.path
        return f"{_bracket(self.host)}:{self.port}"

    def clashes_with(self, other: ListenAddress) -> bool:
        """Both would bind one TCP port: same family and port (not 0, which picks a free
        one), and the same host or a wildcard that covers the other."""
        if self.path is not None or other.path is not None:
            return False
        if self.port == 0 or self.port != other.port or self.is_ipv6 != other.is_ipv6:
            return False
        return self.host == other.host or bool({self.host, other.host} & {"0.0.0.0", "::"})

    def local_url(self, scheme: str = "http") -> str | None:
        """The base URL a client on this host uses (a wildcard bind is reached on
        loopback); None for a Unix socket."""
        if self.path is not None:
            return None
        host = WILDCARDS.get(self.host, self.host)
        return f"{scheme}://{_bracket(host)}:{self.port}"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_listen(value: object) -> ListenAddress:
    """`HOST:PORT`, `[V6]:PORT` or `unix:PATH`; a ValueError says what is expected."""
    if isinstance(value, ListenAddress):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected HOST:PORT or unix:PATH, got {type(value).__name__}")
    if value.startswith(UNIX_PREFIX):
        path = value[len(UNIX_PREFIX) :]
        if not path:
            raise ValueError("a Unix socket needs a path, e.g. unix:/run/openimds/admin.sock")
        return ListenAddress(path=path)
    if "://" in value:  # a URL (http://127.0.0.1:8080): the scheme is not ours to take
        raise ValueError(
            f"expected HOST:PORT (e.g. 127.0.0.1:8080) without a scheme, got {value!r}"
        )
    host, sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:8080), got {value!r}")
    return ListenAddress(host=host, port=int(port))


def _dump(address: ListenAddress) -> str:
    return str(address)


_SCHEMA: dict[str, Any] = {
    "type": "string",
    "description": "HOST:PORT, [IPv6]:PORT or unix:PATH",
    "examples": ["127.0.0.1:8080", "[::1]:8080", "unix:/run/openimds/admin.sock"],
}

# The config field type: text in files, environment and flags; a ListenAddress inside.
Listen = Annotated[
    ListenAddress,
    BeforeValidator(parse_listen),
    PlainSerializer(_dump, return_type=str),
    WithJsonSchema(_SCHEMA),
]

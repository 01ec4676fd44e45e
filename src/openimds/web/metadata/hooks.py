"""Request hooks: what a feature may do on the metadata listener before its byte cache.

A hook sees each request once its caller is resolved (the VM, or None for an unknown
caller), before the cache is consulted, and may take the request over: answer with a
response of its own, or hang up with no answer. Such an answer is never cached, so a
fault injected for a while cannot poison the cache nor be hidden by it; a hook that
returns None leaves the request to the normal path. With no hooks the listener pays one
truth test per request (docs/architecture.md, "Request hooks").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from openimds.core.http import Response
from openimds.core.inventory import VmSnapshot


@dataclass(frozen=True, slots=True)
class HookedRequest:
    """What a hook sees: the caller's VM (None: unknown), the method, the raw request
    target (path and query, undecoded) and the peer address."""

    vm: VmSnapshot | None
    method: str
    target: str
    peer: str

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]


@dataclass(frozen=True, slots=True)
class Takeover:
    """A hook's verdict: answer `response` (never cached), or with `close` hang up
    without answering. `rule` names what fired, for the access log and metrics."""

    rule: str
    response: Response | None = None
    close: bool = False


RequestHook = Callable[[HookedRequest], Takeover | None]

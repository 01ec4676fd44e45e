"""Request hooks: what a feature may do on the metadata listener before its byte cache.

A hook sees each request once its caller is resolved (the VM, or None for an unknown
caller), before the cache is consulted, and may take the request over: answer with a
response of its own, hang up with no answer, hold the connection open without answering,
or delay the answer (its own, or the normal one). A hook's own answer is never cached, so
a fault injected for a while cannot poison the cache nor be hidden by it; a hook that
returns None leaves the request to the normal path.

A hook that is idle most of the time (fault injection with no rules) carries a
`HookSwitch`: the listener calls only hooks that are on, so with none on it pays one
truth test per request (docs/architecture.md, "Request hooks").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from openimds.core.http import Response
from openimds.core.vm import VmSnapshot


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
    """A hook's verdict. `rule` names what fired, for the access log and metrics.

    - `response`: answer with it (never cached);
    - `close`: hang up without answering;
    - `hold`: answer nothing and read nothing more; the connection stays open until the
      client gives up (or the listener's idle timeout closes it);
    - `delay` (seconds): write the answer that late, `response` if given, else the
      normal one. Later requests pipelined on the connection wait behind it.
    """

    rule: str
    response: Response | None = None
    close: bool = False
    hold: bool = False
    delay: float = 0.0


RequestHook = Callable[[HookedRequest], Takeover | None]


class HookSwitch:
    """Turns a hook on and off at run time; the listeners watching it are told at once,
    so a rule added through the admin API applies to the very next request."""

    __slots__ = ("_watchers", "on")

    def __init__(self, on: bool = False) -> None:
        self.on = on
        self._watchers: list[Callable[[], None]] = []

    def watch(self, callback: Callable[[], None]) -> None:
        self._watchers.append(callback)

    def set(self, on: bool) -> None:
        if on != self.on:
            self.on = on
            for callback in self._watchers:
                callback()


class Switched(Protocol):
    """A hook with a switch (anything else is always on)."""

    switch: HookSwitch

    def __call__(self, request: HookedRequest) -> Takeover | None: ...


def is_on(hook: RequestHook) -> bool:
    switch = getattr(hook, "switch", None)
    return not isinstance(switch, HookSwitch) or switch.on


def watch(hook: RequestHook, callback: Callable[[], None]) -> None:
    switch = getattr(hook, "switch", None)
    if isinstance(switch, HookSwitch):
        switch.watch(callback)

"""Fault rules: which requests a rule takes over and what it answers, as pure logic.

Rules (docs/faults.md):
- A rule matches a request when its VM (None: every caller) and its path pattern match,
  and `now` is inside its window (`start` <= now < `until`, either side open).
- Path patterns are globs (`*`, `?`, `[...]`) on the path without the query; a pattern with
  no glob character matches that path and every path below it.
- Each request a rule matches is one hit. A rule with `times` stops matching after that
  many hits; a sequence runs once, one status per hit, and a 2xx step lets that request
  through to the normal answer.
- Kinds: `status` answers with Azure's body for it; `sequence` likewise, step by step;
  `latency` delays the normal answer by a fixed time or one drawn from a range; `close`
  hangs up without an answer; `hang` holds the connection open without an answer.
- The first matching rule (in the order rules were added) decides; the others do not
  count a hit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from openimds.core.http import JSON, Response

FaultKind = Literal["status", "sequence", "latency", "close", "hang"]
FAULT_KINDS: tuple[FaultKind, ...] = ("status", "sequence", "latency", "close", "hang")
IDENTITY_PREFIX = "/metadata/identity/"

# Wording of the answers a status rule gives, per status: Azure's where its documentation
# names the condition (410 while IMDS is updating, 429 throttling, 500, 503), in the
# IMDS shape {"error"} and the identity endpoint's {"error","error_description"}.
_WORDS: dict[int, tuple[str, str]] = {
    410: ("gone", "IMDS is being updated. Retry after some time"),
    429: ("too_many_requests", "Too many requests"),
    500: ("internal_error", "Internal server error"),
    503: ("service_unavailable", "Service unavailable. Retry after some time"),
}


@dataclass(frozen=True, slots=True)
class FaultRule:
    id: str
    kind: FaultKind
    path: str = "*"
    vm: str | None = None
    statuses: tuple[int, ...] = ()  # `status`: one; `sequence`: one per hit
    retry_after: int | None = None  # seconds, sent as Retry-After with a status answer
    delay: tuple[float, float] = (0.0, 0.0)  # `latency`: fixed (a == b) or a range
    times: int | None = None
    start: float | None = None  # epoch seconds
    until: float | None = None

    @property
    def limit(self) -> int | None:
        """Hits after which the rule is spent (None: no limit)."""
        return len(self.statuses) if self.kind == "sequence" else self.times


@dataclass(frozen=True, slots=True)
class Action:
    """What a rule does to one request: answer `response`, hang up (`close`), hold the
    connection (`hold`), or delay the normal answer (`delay`); `passes` lets it through."""

    rule: str
    response: Response | None = None
    close: bool = False
    hold: bool = False
    delay: float = 0.0

    @property
    def passes(self) -> bool:
        return self.response is None and not (self.close or self.hold) and self.delay <= 0


def path_matches(pattern: str, path: str) -> bool:
    if any(c in pattern for c in "*?["):
        return fnmatchcase(path, pattern)
    base = pattern.rstrip("/")
    return path in (pattern, base) or path.startswith(base + "/")


def matches(rule: FaultRule, vm: str | None, path: str, now: float, hits: int) -> bool:
    if rule.vm is not None and rule.vm != vm:
        return False
    if rule.start is not None and now < rule.start:
        return False
    if rule.until is not None and now >= rule.until:
        return False
    limit = rule.limit
    if limit is not None and hits >= limit:
        return False
    return path_matches(rule.path, path)


def spent(rule: FaultRule, hits: int, now: float) -> bool:
    """The rule can never match again: its hits are used up or its window is over."""
    limit = rule.limit
    return (limit is not None and hits >= limit) or (rule.until is not None and now >= rule.until)


def act(rule: FaultRule, hits: int, path: str, pick: Callable[[float, float], float]) -> Action:
    """What the rule does to its hit number `hits` (0-based) on `path`; `pick(a, b)`
    draws a delay from a range (the shell's randomness)."""
    if rule.kind == "close":
        return Action(rule.id, close=True)
    if rule.kind == "hang":
        return Action(rule.id, hold=True)
    if rule.kind == "latency":
        low, high = rule.delay
        return Action(rule.id, delay=low if low == high else pick(low, high))
    status = rule.statuses[hits] if rule.kind == "sequence" else rule.statuses[0]
    if 200 <= status < 300:
        return Action(rule.id)
    return Action(rule.id, response=fault_response(status, path, rule.retry_after))


def fault_response(status: int, path: str, retry_after: int | None = None) -> Response:
    """Azure's answer for `status`, in the shape of the endpoint at `path`."""
    code, text = _WORDS.get(status, ("error", f"Request failed with status {status}"))
    if path.startswith(IDENTITY_PREFIX):
        payload = {"error": code, "error_description": text}
    else:
        payload = {"error": text}
    headers = () if retry_after is None else (("Retry-After", str(retry_after)),)
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), JSON, headers)

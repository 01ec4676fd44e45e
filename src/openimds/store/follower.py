"""A node's copies kept in line with the store's change log (docs/fleet.md, consistency).

Every committed change has a position in the store's log (store/base.py, ChangeSet). A
node remembers the last position it applied; whatever makes it look (a notice from the
change feed, a reconnect, the periodic check once a second) reads everything after that
position, with the values as they are at the log's head, in one snapshot, and hands them
to the features that follow each kind. The position advances only once every handler
took its changes, so a change whose read or application fails is read again on the next
look, never dropped; a log pruned past the position makes every follower reload all.

The store is read on a thread of its own, over a connection of its own, so an outage (a
database that hangs rather than refuses) never holds the event loop, where the copies
live and change: the changes are applied there, through `post`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openimds.store.base import ChangeSet, Store, StoreError

log = logging.getLogger("openimds.store")

# A kind's changes after a position: key -> its value at the log's head (None: deleted);
# None instead of a mapping: the log no longer reaches back, reload everything.
Changes = Mapping[str, str | None] | None
Handler = Callable[[Changes], None]
Post = Callable[[Callable[[], None]], object]

CHECK_EVERY = 1.0  # seconds between looks at the log's head when no notice arrives
PRUNE_EVERY = 60.0  # seconds between prunings of the log (any node may prune)
APPLY_TIMEOUT = 30.0  # seconds the loop may take to apply one batch of changes


def each_key(handler: Callable[[str], None]) -> Handler:
    """A follower that re-reads what it needs by key ("*": everything of the kind)."""

    def follow(changes: Changes) -> None:
        if changes is None:
            handler("*")
            return
        for key in changes:
            handler(key)

    return follow


@dataclass(frozen=True, slots=True)
class Lag:
    """What readiness reports of a node's view of the store."""

    reachable: bool
    unreachable_for: float  # seconds since the store stopped answering (0: it answers)
    behind: int  # changes committed that this node has not applied yet
    behind_for: float  # seconds since this node first saw itself behind (0: it is not)

    @property
    def ready(self) -> bool:
        return self.reachable and self.behind == 0


class Follower:
    """Follows the change log of `reader` (a handle of the node's store that this
    follower alone uses) from `position`: the log's head read before the node loaded
    what it holds, so nothing committed meanwhile is missed."""

    def __init__(self, store: Store, reader: Store, position: int, *, shared: bool) -> None:
        self.store = store  # the node's own handle: prunes the log now and then
        self.reader = reader
        self.position = position
        # Without other writers (SQLite, memory) every change is already applied: the
        # log is still watched, for readiness, but nothing is handed on.
        self.shared = shared
        self.handlers: dict[str, Handler] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._head_seen = position
        self._down_since: float | None = None
        self._behind_since: float | None = None
        self._failing_at: int | None = None  # the position a handler failed after
        self._last_prune = 0.0

    # -- set-up ------------------------------------------------------------------------------
    def follow(self, kind: str, handler: Handler) -> None:
        if kind in self.handlers:
            raise RuntimeError(f"record kind {kind} followed twice")
        self.handlers[kind] = handler

    def start(self, post: Post) -> None:
        """Look at the log from now on, applying through `post` (the event loop's
        call_soon_threadsafe); notices from the store's change feed wake it at once."""
        self._thread = threading.Thread(
            target=self._run, args=(post,), name="store-follow", daemon=True
        )
        self._thread.start()
        self.reader.watch(self.notice)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- what readiness reads -------------------------------------------------------------------
    def lag(self) -> Lag:
        now = time.monotonic()
        behind = max(0, self._head_seen - self.position)
        return Lag(
            reachable=self._down_since is None,
            unreachable_for=0.0 if self._down_since is None else now - self._down_since,
            behind=behind,
            behind_for=0.0
            if self._behind_since is None or not behind
            else now - self._behind_since,
        )

    # -- the follower's thread --------------------------------------------------------------------
    def notice(self, position: int, kind: str, key: str) -> None:
        """A hint from the change feed (on its thread): something committed."""
        if position == 0 or position > self.position:
            self._wake.set()

    def _run(self, post: Post) -> None:
        while not self._stop.is_set():
            self._wake.wait(CHECK_EVERY)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.look(post)

    def look(self, post: Post) -> None:
        """One look at the log: read what is new and apply it, or note why not."""
        try:
            head = self.reader.log_head()
            changes = None
            if head > self.position:
                self._seen(head)
                if self.shared:
                    changes = self.reader.read_changes(self.position)
                else:
                    self._advance(head)
            self._maybe_prune()
        except StoreError as exc:
            self._went_down(exc)
            return
        self._came_back()
        if changes is not None:
            self._apply(changes, post)

    def _apply(self, changes: ChangeSet, post: Post) -> None:
        self._seen(changes.head)
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def apply() -> None:
            try:
                self._hand_on(changes)
            except BaseException as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)

        post(apply)
        try:
            done.result(timeout=APPLY_TIMEOUT)
        except StoreError as exc:
            # A follower read more than it was given and the store went away: retried.
            self._went_down(exc)
            return
        except Exception:
            if self._failing_at != self.position:
                self._failing_at = self.position
                log.exception(
                    "applying the state store's changes after position %d failed; "
                    "retrying on every look until it succeeds",
                    self.position,
                )
            return
        self._failing_at = None
        self._advance(changes.head)

    def _hand_on(self, changes: ChangeSet) -> None:
        """On the event loop: each following kind's changes, in one call per kind."""
        if not changes.complete:
            for handler in self.handlers.values():
                handler(None)
            return
        by_kind: dict[str, dict[str, str | None]] = {}
        for (kind, key), value in changes.values.items():
            if kind in self.handlers:
                by_kind.setdefault(kind, {})[key] = value
        for kind, changed in by_kind.items():
            self.handlers[kind](changed)

    def _advance(self, head: int) -> None:
        self.position = max(self.position, head)
        if self.position >= self._head_seen:
            self._behind_since = None

    def _seen(self, head: int) -> None:
        self._head_seen = max(self._head_seen, head)
        if self._head_seen > self.position and self._behind_since is None:
            self._behind_since = time.monotonic()

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune >= PRUNE_EVERY:
            self._last_prune = now
            self.store.prune_log()

    def _went_down(self, exc: BaseException) -> None:
        # The store logs the outage itself, once when it starts and once when it ends.
        if self._down_since is None:
            self._down_since = time.monotonic()

    def _came_back(self) -> None:
        self._down_since = None


def report(lag: Lag) -> dict[str, Any]:
    """Readiness as the admin API answers it."""
    body: dict[str, Any] = {"status": "ready" if lag.ready else "not ready"}
    store: dict[str, Any] = {"reachable": lag.reachable}
    if not lag.reachable:
        store["unreachable_for"] = round(lag.unreachable_for, 1)
    body["store"] = store
    body["behind"] = {"changes": lag.behind, "for": round(lag.behind_for, 1)}
    return body

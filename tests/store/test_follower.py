"""A node follows the store's change log: every committed change applied, in one
snapshot, retried until it succeeds, after outages and pruning too."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from openimds.store import Put, Store, StoreError, open_store
from openimds.store.follower import Changes, Follower, each_key, report
from tests.support.postgres import Cluster, wait_until


class Copy:
    """What a feature keeps of kind `vm`, as the follower hands it on."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.values: dict[str, str] = dict(store.list_records("vm"))
        self.calls: list[Changes] = []
        self.fail_next: BaseException | None = None
        self.lock = threading.Lock()

    def __call__(self, changes: Changes) -> None:
        with self.lock:
            if self.fail_next is not None:
                failure, self.fail_next = self.fail_next, None
                raise failure
            self.calls.append(changes)
            if changes is None:
                self.values = dict(self.store.list_records("vm"))
                return
            for key, value in changes.items():
                if value is None:
                    self.values.pop(key, None)
                else:
                    self.values[key] = value

    def get(self, key: str) -> str | None:
        with self.lock:
            return self.values.get(key)


def inline(work: Callable[[], None]) -> None:
    work()


@pytest.fixture
def nodes(postgres_url: str) -> Iterator[tuple[Store, Store, Store]]:
    """Node A's store; node B's store and its follower's reader."""
    a, b = open_store(postgres_url), open_store(postgres_url)
    reader = open_store(postgres_url, readonly=True)
    yield a, b, reader
    for store in (a, b, reader):
        store.close()


def started(b: Store, reader: Store, copy: Copy) -> Follower:
    follower = Follower(b, reader, b.log_head(), shared=True)
    follower.follow("vm", copy)
    follower.start(inline)
    return follower


def test_a_change_on_one_node_is_applied_on_the_other_within_a_second(
    nodes: tuple[Store, Store, Store],
) -> None:
    a, b, reader = nodes
    copy = Copy(b)
    follower = started(b, reader, copy)
    try:
        delays = []
        for n in range(20):
            began = time.monotonic()
            a.put_record("vm", f"web-{n}", f"v{n}")
            assert wait_until(lambda n=n: copy.get(f"web-{n}") == f"v{n}", timeout=1)
            delays.append(time.monotonic() - began)
        assert max(delays) < 1.0
        assert follower.lag().ready
    finally:
        follower.stop()


def test_a_batch_arrives_in_one_call_with_the_values_at_the_head(
    nodes: tuple[Store, Store, Store],
) -> None:
    a, b, reader = nodes
    copy = Copy(b)
    follower = Follower(b, reader, b.log_head(), shared=True)
    follower.follow("vm", copy)
    a.write_batch([Put("vm", "x", "1"), Put("vm", "y", "1")])
    a.put_record("vm", "x", "2")
    a.delete_record("vm", "y")
    follower.look(inline)  # one look, by hand: no thread, no notice
    assert copy.calls == [{"x": "2", "y": None}]
    assert follower.position == a.log_head()


def test_a_failed_application_is_retried_never_dropped(
    nodes: tuple[Store, Store, Store],
) -> None:
    a, b, reader = nodes
    copy = Copy(b)
    follower = Follower(b, reader, b.log_head(), shared=True)
    follower.follow("vm", copy)
    a.put_record("vm", "z", "1")
    copy.fail_next = StoreError("the store went away mid-read")
    follower.look(inline)
    assert copy.get("z") is None and follower.position < a.log_head()
    assert not follower.lag().ready and follower.lag().behind == 1
    copy.fail_next = RuntimeError("a bug in a handler")
    follower.look(inline)
    assert copy.get("z") is None
    follower.look(inline)
    assert copy.get("z") == "1"
    assert follower.lag().ready


def test_a_log_pruned_past_the_position_reloads_everything(
    nodes: tuple[Store, Store, Store],
) -> None:
    a, b, reader = nodes
    copy = Copy(b)
    follower = Follower(b, reader, b.log_head(), shared=True)
    follower.follow("vm", copy)
    a.put_record("vm", "p", "1")
    a.put_record("vm", "q", "1")
    a.prune_log(older_than=-1)
    follower.look(inline)
    assert copy.calls == [None]
    assert copy.get("p") == "1" and copy.get("q") == "1"


def test_after_a_database_restart_the_first_change_is_applied_within_two_seconds(
    postgres_cluster: Cluster, nodes: tuple[Store, Store, Store]
) -> None:
    a, b, reader = nodes
    copy = Copy(b)
    follower = started(b, reader, copy)
    try:
        postgres_cluster.stop()
        assert wait_until(lambda: not follower.lag().reachable, timeout=5)
        assert report(follower.lag())["status"] == "not ready"
        postgres_cluster.start()
        while True:  # the first write the database takes
            try:
                a.put_record("vm", "after-outage", "1")
                break
            except StoreError:
                time.sleep(0.05)
        written = time.monotonic()
        assert wait_until(lambda: copy.get("after-outage") == "1", timeout=2)
        assert time.monotonic() - written < 2.0
        assert wait_until(lambda: follower.lag().ready, timeout=2)
    finally:
        if not postgres_cluster.running():
            postgres_cluster.start()
        follower.stop()


def test_each_key_hands_a_keyed_follower_one_key_at_a_time() -> None:
    seen: list[str] = []
    follow = each_key(seen.append)
    follow({"a": "1", "b": None})
    follow(None)
    assert seen == ["a", "b", "*"]

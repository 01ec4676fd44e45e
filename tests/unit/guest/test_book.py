"""Each VM's provisioning state: what writes the store, and when (guest/book.py)."""

from __future__ import annotations

from collections.abc import Sequence

from openimds.core.guest.reports import AgentStatus, HealthReport
from openimds.core.instance import Node
from openimds.core.vm import VmSnapshot
from openimds.guest.book import KIND, GuestBook
from openimds.guest.certificates import ssh_keys
from openimds.store import Expect, Op
from openimds.store.memory import MemoryStore


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.batches = 0
        self.reads = 0

    def write_batch(self, ops: Sequence[Op], expect: Sequence[Expect] = ()) -> None:
        self.batches += 1
        super().write_batch(ops, expect)

    def get_record(self, kind: str, key: str) -> str | None:
        self.reads += 1
        return super().get_record(kind, key)


def _vm(revision: int = 1, key: str = "") -> VmSnapshot:
    compute: dict[str, Node] = {"name": "a", "vmId": "v-1"}
    if key:
        compute["publicKeys"] = [{"keyData": key, "path": "/x"}]
    return VmSnapshot(id="a", name="a", revision=revision, instance={"compute": compute})


def _book(store: CountingStore, now: list[float]) -> GuestBook:
    book = GuestBook(store, lambda: now[0], ssh_keys)
    book.load()
    return book


def test_goal_state_reads_write_nothing_until_the_tick() -> None:
    store, now = CountingStore(), [100.0]
    book = _book(store, now)
    assert book.incarnation(_vm()) == 1
    for _ in range(5):
        assert book.incarnation(_vm()) == 1
        book.answered("wire.goalstate", 200, "a")
    assert store.batches == 0 and store.reads == 0
    assert book.view("a")["goal_state_fetched_at"] == "1970-01-01T00:01:40Z"
    book.flush()
    assert store.batches == 1
    book.flush()
    assert store.batches == 1  # nothing new


def test_a_refused_goal_state_request_is_no_fetch() -> None:
    book = _book(CountingStore(), [100.0])
    book.answered("wire.goalstate", 405, "a")  # a DELETE of the goal state
    assert book.view("a")["goal_state_fetched_at"] is None
    book.answered("wire.goalstate", 200, "a")
    assert book.view("a")["goal_state_fetched_at"] == "1970-01-01T00:01:40Z"


def test_the_incarnation_moves_with_the_goal_state_only_and_never_back() -> None:
    store, now = CountingStore(), [0.0]
    book = _book(store, now)
    assert book.incarnation(_vm(1)) == 1
    assert book.incarnation(_vm(2)) == 1  # another revision, same goal state
    assert book.incarnation(_vm(3, key="ssh-ed25519 AAAA x")) == 2
    book.flush()
    again = _book(store, now)  # a restart
    assert again.incarnation(_vm(1, key="ssh-ed25519 AAAA x")) == 2
    assert again.incarnation(_vm(2)) == 3  # back to the first goal state: still forward


def test_reports_write_only_when_they_change() -> None:
    store, now = CountingStore(), [10.0]
    book = _book(store, now)
    ready = HealthReport("Ready")
    book.record_health(_vm(), ready)
    now[0] = 20.0
    book.record_health(_vm(), ready)
    assert store.batches == 1
    view = book.view("a")
    assert view["ready_since"] == "1970-01-01T00:00:10Z"
    assert view["last_report_at"] == "1970-01-01T00:00:20Z"
    book.record_health(_vm(), HealthReport("NotReady", "Provisioning", "Starting"))
    assert store.batches == 2 and book.view("a")["ready_since"] is None
    status = AgentStatus("2.7.3.0", "Ready", "Guest Agent is running")
    book.record_status(_vm(), status)
    book.record_status(_vm(), status)
    assert store.batches == 3
    assert store.get_record(KIND, "a") is not None


def test_another_nodes_change_is_followed_and_drops_cached_answers() -> None:
    store, now = CountingStore(), [0.0]
    mine, theirs = _book(store, now), _book(store, now)
    dropped: list[str] = []
    mine.stale.append(dropped.append)
    assert mine.incarnation(_vm(1)) == 1
    assert theirs.incarnation(_vm(5, key="ssh-ed25519 AAAA x")) == 1
    theirs.flush()
    theirs.record_health(_vm(5), HealthReport("Ready"))
    mine.follow("a")
    assert dropped == ["a"]  # same incarnation number, another goal state: re-render
    assert mine.view("a")["health"]["state"] == "Ready"
    mine.follow("*")
    assert mine.view("a")["health"]["state"] == "Ready"

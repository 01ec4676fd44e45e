"""Failed admin logins per source: the limit, the wait, expiry, other sources, and a
table that never grows past its bound."""

from __future__ import annotations

from openimds.web.login_guard import LoginGuard, local


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_source_is_refused_once_past_the_limit_and_only_it() -> None:
    clock = Clock()
    guard = LoginGuard(3, clock=clock)
    for _ in range(3):
        assert guard.retry_after("10.0.0.1") is None
        guard.failed("10.0.0.1")
        clock.now += 1
    assert guard.retry_after("10.0.0.1") == 57  # the first failure is 3 s old
    assert guard.retry_after("10.0.0.2") is None


def test_the_wait_ends_when_the_oldest_failure_is_a_window_old() -> None:
    clock = Clock()
    guard = LoginGuard(2, clock=clock)
    guard.failed("a")
    clock.now += 30
    guard.failed("a")
    clock.now += 29.5
    assert guard.retry_after("a") == 1
    clock.now += 0.5
    assert guard.retry_after("a") is None  # one failure left in the last minute
    guard.failed("a")
    assert guard.retry_after("a") == 30


def test_zero_turns_it_off() -> None:
    guard = LoginGuard(0)
    for _ in range(100):
        guard.failed("a")
    assert guard.retry_after("a") is None
    assert guard.failures == {}


def test_the_table_is_bounded_and_forgets_the_least_recent_source() -> None:
    clock = Clock()
    guard = LoginGuard(2, max_sources=100, clock=clock)
    for n in range(1000):
        guard.failed(f"10.0.{n // 256}.{n % 256}")
        guard.failed(f"10.0.{n // 256}.{n % 256}")
        assert len(guard.failures) <= 100
    assert guard.retry_after("10.0.3.231") is not None  # the last one is remembered
    assert guard.retry_after("10.0.0.0") is None  # the first was forgotten
    assert all(len(times) <= 2 for times in guard.failures.values())


def test_expired_sources_go_before_live_ones() -> None:
    clock = Clock()
    guard = LoginGuard(1, max_sources=2, clock=clock)
    guard.failed("live")
    guard.failed("old")
    clock.now += 61
    guard.failed("live")  # failed again: live, and now the most recent
    guard.failed("new")  # the table is full: "old" expired, so it goes
    assert set(guard.failures) == {"live", "new"}


def test_local_sources_are_loopback_and_the_unix_socket_only() -> None:
    for source in ("unix", "127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert local(source), source
    for source in ("10.0.0.1", "192.0.2.7", "::ffff:10.0.0.1", "2001:db8::1", "testclient", ""):
        assert not local(source), source

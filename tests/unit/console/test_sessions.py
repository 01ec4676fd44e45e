"""Console sessions: ids and CSRF tokens, expiry by age and idleness, a bounded table."""

from __future__ import annotations

import pytest

from openimds.console import sessions
from openimds.console.sessions import Sessions, csrf_ok, token_ok


def test_a_session_is_found_by_its_id_and_has_its_own_csrf_token() -> None:
    table = Sessions()
    sid, session = table.open(0.0)
    other_sid, other = table.open(0.0)
    assert sid != other_sid and session.csrf != other.csrf
    assert len(sid) >= 40  # 32 random bytes, url-safe
    assert table.find(sid, 1.0) is session
    assert table.find("forged", 1.0) is None
    assert table.find(None, 1.0) is None


def test_a_session_ends_when_idle_or_too_old() -> None:
    table = Sessions(lifetime=100.0, idle=10.0)
    sid, _ = table.open(0.0)
    assert table.find(sid, 9.0) is not None  # seen at 9: idle clock restarts
    assert table.find(sid, 18.0) is not None
    assert table.find(sid, 29.0) is None  # 11 s idle
    sid, _ = table.open(0.0)
    for now in range(5, 100, 5):
        assert table.find(sid, float(now)) is not None
    assert table.find(sid, 101.0) is None  # used all along, but too old


def test_closing_a_session_logs_it_out() -> None:
    table = Sessions()
    sid, _ = table.open(0.0)
    table.close(sid)
    assert table.find(sid, 0.0) is None
    table.close("unknown")  # harmless


def test_the_table_is_bounded_and_forgets_the_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions, "MAX_SESSIONS", 3)
    table = Sessions()
    first, _ = table.open(0.0)
    for _ in range(3):
        table.open(0.0)
    assert len(table) == 3
    assert table.find(first, 0.0) is None


def test_csrf_and_token_checks() -> None:
    _, session = Sessions().open(0.0)
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None)
    assert not csrf_ok(session, "")
    assert not csrf_ok(session, session.csrf[:-1] + "x")
    assert token_ok("secret-token-0123456789", " secret-token-0123456789 ")
    assert not token_ok("secret-token-0123456789", "secret-token-012345678")

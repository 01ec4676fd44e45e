"""Console sessions: the admin token, typed once into the login form, exchanged for a
random session id kept in an HttpOnly, SameSite=Strict cookie, and a per-session CSRF
token every change must echo in a header.

Sessions live in memory only: a restart (or a new admin token) logs everyone out, and no
secret is ever written to the store. The table is bounded, so a flood of logins cannot
grow it; the oldest session goes first. Pure: the caller passes the time.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

COOKIE: Final[str] = "openimds_console"
CSRF_HEADER: Final[str] = "x-csrf-token"
# A working day: long enough not to interrupt an operator, short enough that a forgotten
# browser does not hold the fleet open for ever.
LIFETIME: Final[float] = 8 * 3600.0
# Idle sessions end sooner: an hour without a single request.
IDLE: Final[float] = 3600.0
MAX_SESSIONS: Final[int] = 1024


@dataclass(slots=True)
class Session:
    csrf: str
    created: float
    seen: float
    # A message for the next page shown (what the last change did): text, is-error.
    flash: tuple[str, bool] | None = None


class Sessions:
    def __init__(self, *, lifetime: float = LIFETIME, idle: float = IDLE) -> None:
        self.lifetime = lifetime
        self.idle = idle
        self._by_id: OrderedDict[str, Session] = OrderedDict()

    def open(self, now: float) -> tuple[str, Session]:
        """A new session: its id (the cookie's value) and its CSRF token."""
        while len(self._by_id) >= MAX_SESSIONS:
            self._by_id.popitem(last=False)
        sid = secrets.token_urlsafe(32)
        session = self._by_id[sid] = Session(secrets.token_urlsafe(32), now, now)
        return sid, session

    def find(self, sid: str | None, now: float) -> Session | None:
        """The live session of this cookie value, or None (unknown, expired or idle)."""
        if not sid:
            return None
        session = self._by_id.get(sid)
        if session is None:
            return None
        if now - session.created > self.lifetime or now - session.seen > self.idle:
            del self._by_id[sid]
            return None
        session.seen = now
        return session

    def close(self, sid: str | None) -> None:
        if sid:
            self._by_id.pop(sid, None)

    def __len__(self) -> int:
        return len(self._by_id)


def csrf_ok(session: Session, given: str | None) -> bool:
    """Whether a change request carries this session's CSRF token (constant time)."""
    return given is not None and hmac.compare_digest(given.encode(), session.csrf.encode())


def token_ok(expected: str, given: str) -> bool:
    return hmac.compare_digest(given.strip().encode(), expected.encode())

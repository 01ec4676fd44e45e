"""Azure's time formats, computed from an injected epoch second (no clock read here).

Formatting is by hand rather than strftime's %a/%b, whose names follow the locale.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip


def utc(epoch: float) -> datetime:
    """The whole UTC second of an epoch time."""
    return _EPOCH + timedelta(seconds=int(epoch))


def utc_fields(epoch: float) -> tuple[int, int, int, int, int, int]:
    """(year, month, day, hour, minute, second) in UTC."""
    t = utc(epoch)
    return t.year, t.month, t.day, t.hour, t.minute, t.second


def rfc1123(epoch: float) -> str:
    """Scheduled events' NotBefore, e.g. "Mon, 19 Sep 2016 18:29:47 GMT"."""
    t = utc(epoch)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT"
    )


def azure_time(epoch: float) -> str:
    """Attested document timestamps, `MM/DD/YY HH:MM:SS -0000` (two-digit year, literal -0000)."""
    t = utc(epoch)
    return f"{t.month:02d}/{t.day:02d}/{t.year % 100:02d} {t:%H:%M:%S} -0000"


def compact(epoch: float) -> str:
    """The attested document's default nonce, `YYYYMMDD-HHMMSS`."""
    return f"{utc(epoch):%Y%m%d-%H%M%S}"

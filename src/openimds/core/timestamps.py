"""Azure's time formats, computed from an injected epoch second (no clock read here),
and the one parser of the times operators type (events, attested verify).

Formatting is by hand rather than strftime's %a/%b, whose names follow the locale.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
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


_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RELATIVE: Final = re.compile(r"^\+?((?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+|\d+(?:\.\d+)?)$")
_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


class TimeFormError(ValueError):
    """Text that is not a time in any accepted form; the message lists them."""


def parse_time(value: str | float, base: float) -> float:
    """Epoch seconds of what an operator typed: `+5m`, `+90s`, `+1h30m`, `now` or a number
    of seconds (relative to `base`), an RFC 3339 time with `Z` or an offset, or an RFC 1123
    one. A time without a zone is refused: guessing one would shift it by hours."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return base + float(value)
    if not isinstance(value, str):
        raise TimeFormError(f"not a time: {value!r}")
    text = value.strip()
    if text == "now":
        return base
    match = _RELATIVE.match(text)
    if match:
        body = match.group(1)
        parts = _PART.findall(body)
        if not parts:
            return base + float(body)
        return base + sum(float(n) * _UNITS[u] for n, u in parts)
    return _absolute(text)


# RFC 1123 (8: NotBefore's form): `Mon, 24 Nov 2025 16:10:00 GMT`, the weekday optional,
# the zone GMT, UTC, Z or +hhmm. Parsed by hand: strptime's month names follow the locale
# (and email.utils, which would parse it, reaches the clock).
_RFC1123: Final = re.compile(
    r"(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{2}):(\d{2}):(\d{2})"
    r"(?:\s+(GMT|UTC|UT|Z|[+-]\d{4}))?"
)


def _rfc1123(text: str) -> datetime | None:
    match = _RFC1123.fullmatch(text)
    if match is None or match.group(2).title() not in _MONTHS:
        return None
    day, month, year, hour, minute, second, zone = match.groups()
    when = datetime(
        int(year), _MONTHS.index(month.title()) + 1, int(day), int(hour), int(minute), int(second)
    )
    if zone is None:
        return when  # refused by the caller: no zone
    minutes = 0
    if zone[0] in "+-":
        minutes = (int(zone[1:3]) * 60 + int(zone[3:5])) * (-1 if zone[0] == "-" else 1)
    return when.replace(tzinfo=timezone(timedelta(minutes=minutes)))


def _absolute(text: str) -> float:
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = _rfc1123(text)
        except ValueError:  # a day or hour out of range
            parsed = None
    if parsed is None:
        raise TimeFormError(
            f"not a time: {text!r} (use +5m, +30s, now, RFC 3339 or RFC 1123 with a zone)"
        )
    if parsed.tzinfo is None:
        raise TimeFormError(f"{text!r} has no time zone; add Z or an offset")
    return parsed.timestamp()

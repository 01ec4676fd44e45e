"""Azure's time formats from an epoch second, checked against the standard library."""

from __future__ import annotations

import time
from email.utils import formatdate

from hypothesis import given
from hypothesis import strategies as st

from openimds.core.timestamps import azure_time, compact, rfc1123, utc_fields

T0 = 1_764_000_000.0  # Mon, 24 Nov 2025 16:00:00 GMT


def test_rfc1123_matches_the_standard_library() -> None:
    for epoch in (0, 951_782_400, 1_474_309_787, 4_102_444_799, T0, T0 + 86_399.9):
        assert rfc1123(epoch) == formatdate(int(epoch), usegmt=True)
    assert rfc1123(1_474_309_787) == "Mon, 19 Sep 2016 18:29:47 GMT"  # the 8 sample


@given(st.integers(min_value=0, max_value=4_102_444_800))
def test_utc_fields_match_gmtime(epoch: int) -> None:
    t = time.gmtime(epoch)
    assert utc_fields(epoch) == (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
    assert azure_time(epoch) == time.strftime("%m/%d/%y %H:%M:%S -0000", t)
    assert compact(epoch) == time.strftime("%Y%m%d-%H%M%S", t)

"""A fast slice of scripts/fuzz (which sends 100,000 requests): a few thousand generated
requests over the API surface, HTTP framing games and raw bytes against a real server,
with no 5xx, no malformed answer or hang, no logged error and memory back at its baseline.
The generator and the answer parser are checked too, so a quiet run means something."""

from __future__ import annotations

import random

import pytest

from tests.stress import fuzz
from tests.stress.cases import case
from tests.stress.common import statuses


@pytest.mark.slow
def test_a_slice_of_the_fuzzer_finds_nothing() -> None:
    summary = fuzz.run(requests=4000, seconds=20, seed=20260101, threads=4, settle=2.0)
    assert summary["ok"], summary
    assert isinstance(summary["requests"], int)
    assert summary["requests"] >= 4000
    answered = summary["statuses"]
    assert isinstance(answered, dict)
    # The slice reached the service, not only the parser's refusals.
    assert {"200", "400", "404", "405", "413", "431"} <= set(answered)


def test_the_cases_cover_every_kind_and_framing() -> None:
    rng = random.Random(3)
    made = [case(rng) for _ in range(3000)]
    assert {kind for kind, _, _ in made} == {"api", "pipelined", "mutated", "raw"}
    stream = b"".join(data for _, data, _ in made)
    for marker in (b"Transfer-Encoding: chunked", b"Content-Length: -1", b"HTTP/1.0", b"\x00"):
        assert marker in stream


def test_answers_are_parsed_one_by_one_and_junk_is_noticed() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    head = b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 9\r\n\r\n"
    assert statuses(ok + head + ok) == [200, 405, 200]
    assert statuses(b"HTTP/1.1 100 Continue\r\n\r\n" + ok) == [100, 200]
    assert statuses(ok + b"garbage") is None
    assert statuses(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n") is None

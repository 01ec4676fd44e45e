"""Journal queries: the status and path filters, checked on stored entries, and the
wording of what is refused."""

from __future__ import annotations

import pytest

from openimds.journal.query import JournalError, Query, parse_query, parse_status, whole_number
from openimds.web.metadata.request_ring import Entry


def entry(target: bytes, status: int) -> Entry:
    return (1, 0.0, "vm-a", target, [], status, "instance", "127.0.0.1", "GET")


@pytest.mark.parametrize(
    ("raw", "span"),
    [("429", (429, 429)), ("0", (0, 0)), ("4xx", (400, 499)), ("5XX", (500, 599))],
)
def test_a_status_is_a_code_or_a_class(raw: str, span: tuple[int, int]) -> None:
    assert parse_status(raw) == span


@pytest.mark.parametrize("raw", ["", "4x", "6xx", "0xx", "1000", "-1", "²", "42 ", "xx"])
def test_other_statuses_are_refused_naming_the_parameter(raw: str) -> None:
    with pytest.raises(JournalError, match=r"^status: expected a code such as 429"):
        parse_status(raw)


def test_a_class_keeps_its_hundred_and_a_code_only_itself() -> None:
    errors = Query(status=(400, 499))
    assert [errors.keeps(entry(b"/x", s)) for s in (399, 400, 429, 499, 500)] == [
        False,
        True,
        True,
        True,
        False,
    ]
    throttled = Query(status=(429, 429))
    assert throttled.keeps(entry(b"/x", 429)) and not throttled.keeps(entry(b"/x", 428))


def test_a_path_is_a_prefix_of_the_path_never_of_the_query() -> None:
    instance = Query(path="/metadata/instance")
    assert instance.keeps(entry(b"/metadata/instance/compute?api-version=1", 200))
    assert instance.keeps(entry(b"/metadata/instance", 200))
    assert not instance.keeps(entry(b"/metadata/identity/oauth2/token", 200))
    assert not Query(path="/x?a").keeps(entry(b"/x?a=1", 200))
    # As the journal shows the path: the raw bytes read as Latin-1, not percent-decoded.
    assert Query(path="/caf\xe9").keeps(entry(b"/caf\xe9", 200))
    assert Query(path="/a%20b").keeps(entry(b"/a%20b/c", 200))


def test_both_filters_must_hold_and_none_keeps_all() -> None:
    both = Query(path="/metadata/identity", status=(429, 429))
    assert both.keeps(entry(b"/metadata/identity/oauth2/token", 429))
    assert not both.keeps(entry(b"/metadata/identity/oauth2/token", 200))
    assert not both.keeps(entry(b"/metadata/instance", 429))
    assert Query().keeps(entry(b"/anything", 0))


def test_a_query_string_becomes_a_query() -> None:
    params = {"vm": "vm-a", "path": "/metadata", "status": "5xx"}
    assert parse_query(params) == Query("vm-a", "/metadata", (500, 599))
    assert parse_query({}) == Query()


@pytest.mark.parametrize(("raw", "value"), [(None, None), ("0", 0), ("17", 17)])
def test_whole_numbers(raw: str | None, value: int | None) -> None:
    params = {} if raw is None else {"after": raw}
    assert whole_number(params, "after") == value


@pytest.mark.parametrize("raw", ["", "-1", "1.5", "x", "²", "٣"])
def test_other_numbers_are_refused_naming_the_parameter(raw: str) -> None:
    with pytest.raises(JournalError, match=r"^after: expected a whole number, got "):
        whole_number({"after": raw}, "after")

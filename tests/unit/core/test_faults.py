"""Fault rules as pure logic: matching by VM, path pattern, window and hits; what each
kind does to a request; Azure's answers per status and endpoint shape."""

from __future__ import annotations

import json

import pytest

from openimds.core.faults import FaultRule, act, fault_response, matches, path_matches, spent


def never(low: float, high: float) -> float:
    raise AssertionError("no draw expected")


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*", "/metadata/instance", True),
        ("/metadata/instance", "/metadata/instance", True),
        ("/metadata/instance", "/metadata/instance/compute/name", True),
        ("/metadata/instance", "/metadata/instances", False),
        ("/metadata/instance/", "/metadata/instance", True),
        ("/metadata/identity/*", "/metadata/identity/oauth2/token", True),
        ("/metadata/identity/*", "/metadata/instance", False),
        ("/metadata/*/compute", "/metadata/instance/compute", True),
    ],
)
def test_path_patterns(pattern: str, path: str, expected: bool) -> None:
    assert path_matches(pattern, path) is expected


def test_vm_window_and_hits_limit_a_rule() -> None:
    rule = FaultRule("r", "status", vm="web-0", statuses=(500,), times=2, start=10, until=20)
    assert matches(rule, "web-0", "/x", 10, 0)
    assert not matches(rule, "web-1", "/x", 10, 0)
    assert not matches(rule, None, "/x", 10, 0)
    assert not matches(rule, "web-0", "/x", 9.9, 0)
    assert not matches(rule, "web-0", "/x", 20, 0)
    assert matches(rule, "web-0", "/x", 15, 1)
    assert not matches(rule, "web-0", "/x", 15, 2)
    assert spent(rule, 2, 15) and spent(rule, 0, 20) and not spent(rule, 1, 15)


def test_a_rule_for_every_vm_matches_unknown_callers_too() -> None:
    assert matches(FaultRule("r", "close"), None, "/metadata/instance", 0, 0)


def test_a_sequence_answers_step_by_step_and_lets_2xx_through() -> None:
    rule = FaultRule("seq", "sequence", statuses=(400, 429, 200))
    steps = [act(rule, hit, "/metadata/instance", never) for hit in range(3)]
    assert [s.response.status if s.response else None for s in steps] == [400, 429, None]
    assert steps[2].passes
    assert rule.limit == 3 and spent(rule, 3, 0) and not spent(rule, 2, 0)


def test_status_answers_carry_azure_wording_and_retry_after() -> None:
    rule = FaultRule("busy", "status", statuses=(503,), retry_after=7)
    action = act(rule, 0, "/metadata/instance", never)
    assert action.response is not None
    assert action.response.headers == (("Retry-After", "7"),)
    assert json.loads(action.response.body) == {
        "error": "Service unavailable. Retry after some time"
    }
    assert not action.response.cacheable


def test_the_identity_endpoint_answers_in_its_own_shape() -> None:
    body = json.loads(fault_response(410, "/metadata/identity/oauth2/token").body)
    assert body == {
        "error": "gone",
        "error_description": "IMDS is being updated. Retry after some time",
    }
    assert json.loads(fault_response(418, "/metadata/instance").body) == {
        "error": "Request failed with status 418"
    }


def test_latency_is_fixed_or_drawn_from_the_range() -> None:
    fixed = act(FaultRule("l", "latency", delay=(0.5, 0.5)), 0, "/", never)
    assert fixed.delay == 0.5 and not fixed.passes
    drawn = act(FaultRule("l", "latency", delay=(1.0, 3.0)), 0, "/", lambda a, b: (a + b) / 2)
    assert drawn.delay == 2.0


def test_close_and_hang_answer_nothing() -> None:
    assert act(FaultRule("c", "close"), 0, "/", never).close
    hang = act(FaultRule("h", "hang"), 0, "/", never)
    assert hang.hold and hang.response is None

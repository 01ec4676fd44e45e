"""A schedule request the admin API refuses is worded like a configuration error: the
field path as the caller wrote it and what is allowed, never pydantic's phrases."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from openimds.config.report import Sources, format_errors
from openimds.events.schedule import ScheduleError, scenario_requests, validate_request

PYDANTIC_PHRASES = ("Input should", "Extra inputs", "after validation", "Field required")


def message_of(data: Any) -> str:
    with pytest.raises(ScheduleError) as caught:
        validate_request(data)
    text = str(caught.value)
    assert not any(phrase in text for phrase in PYDANTIC_PHRASES), text
    return text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"type": "Reboot", "notbefore": "+5m"},
            "event: notbefore: unknown field 'notbefore' (did you mean 'notBefore'?); allowed: "
            "approval, at, cancelAt, completeAfter, description, durationInSeconds, eventId, "
            "eventSource, notBefore, target, type",
        ),
        ([1], "event: (top level): expected a mapping of fields, got a list"),
        ({}, "event: type: required, but not given"),
        (
            {"type": "Nope"},
            "event: type: expected one of 'Freeze', 'Reboot', 'Redeploy', 'Preempt' or "
            "'Terminate', got 'Nope'",
        ),
        (
            {"type": "Reboot", "eventId": ""},
            "event: eventId: expected at least 1 character, got ''",
        ),
        (
            {"type": "Reboot", "durationInSeconds": "x"},
            "event: durationInSeconds: expected a whole number, got 'x'",
        ),
        (
            {"type": "Reboot", "notBefore": [1]},
            "event: notBefore: expected a time (+5m, now, RFC 3339 or RFC 1123 with a zone) "
            "or a number of seconds",
        ),
        (
            {"type": "Reboot", "target": {"vm": 1}},
            "event: target: expected KIND:VALUE (e.g. vm:web-0) or a one-key mapping "
            "(e.g. {vm: web-0})",
        ),
    ],
)
def test_request_errors_read_like_config_errors(data: Any, expected: str) -> None:
    assert message_of(data) == expected


def test_scenario_items_are_named() -> None:
    with pytest.raises(ScheduleError) as caught:
        scenario_requests({"events": [{"type": "Reboot"}, "x"]})
    assert str(caught.value) == (
        "scenario event 1: (top level): expected a mapping of fields, got 'x'"
    )


class _Holder(BaseModel):
    items: list[int] = Field(min_length=1)


def test_length_limits_are_worded_for_people_in_the_config_too() -> None:
    with pytest.raises(ValidationError) as caught:
        _Holder.model_validate({"items": []})
    message = format_errors(caught.value, Sources(file="f.yaml"), _Holder)
    assert message == "f.yaml: items: expected at least 1 item, got none"

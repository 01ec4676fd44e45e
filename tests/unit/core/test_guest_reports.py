"""What guests report, parsed: health XML, cloud-init's encoded failures, azure-init's
JSON, status blobs; malformed input is one ReportError."""

from __future__ import annotations

import base64
import json

import pytest

from openimds.core.guest.reports import (
    ReportError,
    decode_description,
    parse_health,
    parse_provisioning_health,
    parse_status_blob,
    unwrap_status,
)


def health(state: str, details: str = "") -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <GoalStateIncarnation>1</GoalStateIncarnation>
  <Container>
    <ContainerId>c-1</ContainerId>
    <RoleInstanceList>
      <Role>
        <InstanceId>i-1</InstanceId>
        <Health><State>{state}</State>{details}</Health>
      </Role>
    </RoleInstanceList>
  </Container>
</Health>""".encode()


def test_ready() -> None:
    report = parse_health(health("Ready"))
    assert (report.state, report.container_id, report.instance_id) == ("Ready", "c-1", "i-1")
    assert report.incarnation == "1" and report.description == "" and not report.details


def test_not_ready_with_substatus_and_a_cloud_init_failure_decoded() -> None:
    description = (
        "result=error|reason=failure to find DHCP interface or lease|agent=Cloud-Init/23.1|"
        "'note=a|b'|vm_id=abc|timestamp=2023-01-01T00:00:00"
    )
    details = (
        f"<Details><SubStatus>ProvisioningFailed</SubStatus>"
        f"<Description>{description}</Description></Details>"
    )
    report = parse_health(health("NotReady", details))
    assert report.substatus == "ProvisioningFailed"
    assert report.description == description
    assert report.details["reason"] == "failure to find DHCP interface or lease"
    assert report.details["note"] == "a|b"  # quoted with ' as cloud-init's csv writer does
    assert report.details["vm_id"] == "abc"


def test_a_plain_description_is_not_decoded() -> None:
    assert decode_description("Starting") == {}
    assert decode_description("") == {}


@pytest.mark.parametrize(
    "body",
    [
        b"<Health",
        b"not xml",
        b"<Other/>",
        health("Sleeping"),
        health(""),
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><Health>&a;</Health>',
    ],
)
def test_malformed_health_reports_are_refused(body: bytes) -> None:
    with pytest.raises(ReportError, match="Bad request"):
        parse_health(body)


def test_azure_init_json() -> None:
    assert parse_provisioning_health(b'{"state": "Ready"}').state == "Ready"
    report = parse_provisioning_health(
        json.dumps(
            {"state": "NotReady", "substatus": "ProvisioningFailed", "details": {"reason": "x"}}
        ).encode()
    )
    assert report.state == "NotReady" and report.details == {"reason": "x"}
    for bad in (b"{", b"[]", b'{"state": "Up"}', b'{"state": "Ready", "details": 3}'):
        with pytest.raises(ReportError):
            parse_provisioning_health(bad)


STATUS = {
    "version": "1.1",
    "timestampUTC": "2026-01-01T00:00:00Z",
    "aggregateStatus": {
        "guestAgentStatus": {
            "version": "2.7.3.0",
            "status": "Ready",
            "formattedMessage": {"lang": "en-US", "message": "Guest Agent is running"},
        },
        "handlerAggregateStatus": [
            {
                "handlerName": "Microsoft.Azure.Extensions.CustomScript",
                "handlerVersion": "2.1",
                "status": "Ready",
            }
        ],
    },
}


def test_status_blob_through_the_host_plugin_wrapper() -> None:
    blob = json.dumps(STATUS).encode()
    wrapped = {
        "requestUri": "http://x/?comp=status",
        "headers": [{"headerName": "x-ms-blob-type", "headerValue": "BlockBlob"}],
        "content": base64.b64encode(blob).decode(),
    }
    status = parse_status_blob(unwrap_status(json.dumps(wrapped).encode()))
    assert (status.agent_version, status.status) == ("2.7.3.0", "Ready")
    assert status.message == "Guest Agent is running"
    assert status.handlers[0]["name"] == "Microsoft.Azure.Extensions.CustomScript"


@pytest.mark.parametrize("body", [b"{", b'{"content": 1}', b'{"content": "***"}', b"[]"])
def test_bad_host_plugin_bodies(body: bytes) -> None:
    with pytest.raises(ReportError):
        unwrap_status(body)


def test_a_status_blob_without_the_agent_status_is_refused() -> None:
    with pytest.raises(ReportError, match="guestAgentStatus"):
        parse_status_blob(b'{"version": "1.1"}')

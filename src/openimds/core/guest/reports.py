"""What guests report to the WireServer and the HostGAPlugin, parsed (docs/guests.md).

- Health (`POST /machine?comp=health`): Ready, or NotReady with a SubStatus and a
  Description. cloud-init words a failure's description as one `|`-separated CSV row of
  `key=value` (`result=error|reason=...|vm_id=...`, sources/azure/errors.py), decoded here.
- azure-init's `POST /provisioning/health`: the same facts in JSON.
- The status blob (`PUT /status` on the HostGAPlugin, wrapped in JSON with the blob in
  base64, or PUT straight to the StatusUploadBlob): reduced to the agent's version,
  status and message and its handlers'; the blob itself is never kept.

Everything malformed raises ReportError, whose message is the 400's body.
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

STATES: Final = ("Ready", "NotReady")
MAX_TEXT: Final = 1024  # characters of a description or message kept


class ReportError(ValueError):
    """A report that cannot be read; nothing of it is applied."""


@dataclass(frozen=True, slots=True)
class HealthReport:
    state: str
    substatus: str = ""
    description: str = ""
    # cloud-init's key=value list, decoded (empty for a plain description).
    details: Mapping[str, str] = field(default_factory=dict)
    container_id: str = ""
    instance_id: str = ""
    incarnation: str = ""

    def as_data(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "substatus": self.substatus,
            "description": self.description,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """The summary of one status blob."""

    agent_version: str
    status: str
    message: str
    handlers: tuple[Mapping[str, str], ...] = ()

    def as_data(self) -> dict[str, Any]:
        return {
            "agent_version": self.agent_version,
            "status": self.status,
            "message": self.message,
            "handlers": [dict(h) for h in self.handlers],
        }


def _xml(body: bytes) -> ET.Element:
    # No DTDs at all: entity expansion is refused rather than bounded.
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise ReportError("Bad request. Document type declarations are not accepted")
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise ReportError(f"Bad request. The health report is not well-formed XML: {exc}") from None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _find(element: ET.Element, *path: str) -> ET.Element | None:
    """The first descendant along `path`, matching local names (namespaces ignored)."""
    current: ET.Element | None = element
    for name in path:
        if current is None:
            return None
        current = next((c for c in current if _local(c.tag) == name), None)
    return current


def _text(element: ET.Element | None) -> str:
    return "" if element is None or element.text is None else element.text.strip()


def parse_health(body: bytes) -> HealthReport:
    """A `Health` document as waagent, cloud-init and afterburn send it."""
    root = _xml(body)
    if _local(root.tag) != "Health":
        raise ReportError("Bad request. The body is not a Health document")
    container = _find(root, "Container")
    role = _find(root, "Container", "RoleInstanceList", "Role")
    health = None if role is None else _find(role, "Health")
    state = _text(None if health is None else _find(health, "State"))
    if state not in STATES:
        raise ReportError(
            "Bad request. Health/State must be Ready or NotReady"
            + (f", not {state[:40]!r}" if state else " (missing)")
        )
    details = None if health is None else _find(health, "Details")
    description = _text(None if details is None else _find(details, "Description"))
    return HealthReport(
        state=state,
        substatus=_text(None if details is None else _find(details, "SubStatus"))[:MAX_TEXT],
        description=description[:MAX_TEXT],
        details=decode_description(description),
        container_id=_text(None if container is None else _find(container, "ContainerId")),
        instance_id=_text(None if role is None else _find(role, "InstanceId")),
        incarnation=_text(_find(root, "GoalStateIncarnation")),
    )


def decode_description(description: str) -> dict[str, str]:
    """cloud-init's encoded report (`result=error|reason=...|key=value...`, one CSV row
    with `|` between fields and `'` quoting) as a mapping; {} for any other text."""
    if not description.startswith("result="):
        return {}
    row = next(csv.reader([description], delimiter="|", quotechar="'"), [])
    decoded: dict[str, str] = {}
    for item in row:
        key, sep, value = item.partition("=")
        if sep and key.strip():
            decoded[key.strip()] = value[:MAX_TEXT]
    return decoded


def parse_provisioning_health(body: bytes) -> HealthReport:
    """azure-init's JSON report: {"state": "Ready"} or {"state": "NotReady", "substatus":
    ..., "description": ..., "details": {...}}."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ReportError("Bad request. The health report is not JSON") from None
    if not isinstance(data, dict):
        raise ReportError("Bad request. The health report must be a JSON object")
    state = data.get("state")
    if state not in STATES:
        raise ReportError("Bad request. state must be Ready or NotReady")
    substatus, description = data.get("substatus", ""), data.get("description", "")
    if not isinstance(substatus, str) or not isinstance(description, str):
        raise ReportError("Bad request. substatus and description must be strings")
    raw_details = data.get("details", {})
    if not isinstance(raw_details, dict):
        raise ReportError("Bad request. details must be a JSON object")
    details = {str(k): str(v)[:MAX_TEXT] for k, v in raw_details.items()}
    return HealthReport(
        state=str(state),
        substatus=substatus[:MAX_TEXT],
        description=description[:MAX_TEXT],
        details=details or decode_description(description),
    )


def unwrap_status(body: bytes) -> bytes:
    """The status blob inside the HostGAPlugin's `PUT /status` body: {"requestUri",
    "headers": [{headerName, headerValue}], "content": base64}."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ReportError("Bad request. The body is not JSON") from None
    content = data.get("content") if isinstance(data, dict) else None
    if not isinstance(content, str):
        raise ReportError("Bad request. The body needs content (the status blob, base64)")
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise ReportError("Bad request. content is not base64") from None


def _message(status: Mapping[str, Any]) -> str:
    formatted = status.get("formattedMessage")
    if isinstance(formatted, Mapping):
        return str(formatted.get("message", ""))[:MAX_TEXT]
    return str(status.get("message", ""))[:MAX_TEXT]


def parse_status_blob(blob: bytes) -> AgentStatus:
    """The agent's status (JSON 1.x: aggregateStatus.guestAgentStatus and
    handlerAggregateStatus), summarised."""
    try:
        data = json.loads(blob)
    except (ValueError, RecursionError):
        raise ReportError("Bad request. The status blob is not JSON") from None
    aggregate = data.get("aggregateStatus") if isinstance(data, dict) else None
    agent = aggregate.get("guestAgentStatus") if isinstance(aggregate, dict) else None
    if not isinstance(agent, dict):
        raise ReportError("Bad request. The status blob has no aggregateStatus.guestAgentStatus")
    handlers = aggregate.get("handlerAggregateStatus") if isinstance(aggregate, dict) else None
    summary = tuple(
        {
            "name": str(h.get("handlerName", "")),
            "version": str(h.get("handlerVersion", "")),
            "status": str(h.get("status", "")),
        }
        for h in (handlers if isinstance(handlers, list) else [])
        if isinstance(h, dict)
    )
    return AgentStatus(
        agent_version=str(agent.get("version", "")),
        status=str(agent.get("status", "")),
        message=_message(agent),
        handlers=summary,
    )

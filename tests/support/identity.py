"""The demo VM's managed identities and the identity endpoint's error bodies, verbatim
(docs/identity.md)."""

from __future__ import annotations

from typing import Any

from tests.support.imds import reference_vm_data

DEMO: dict[str, Any] = reference_vm_data()["identities"]
SYSTEM: dict[str, Any] = DEMO["systemAssigned"]
USER: dict[str, Any] = DEMO["userAssigned"][0]

MALFORMED = {
    "error": "invalid_request",
    "error_description": "The request is missing a required parameter, includes an invalid "
    "parameter value, includes a parameter more than once, or is otherwise malformed.",
}
NOT_FOUND = {"error": "invalid_request", "error_description": "Identity not found"}

"""The `identities` block of a VM file: the managed identities a VM holds
(docs/identity.md).

Every id may be left out; the server generates it once and keeps it in the state store,
so it stays the same across restarts. `systemAssigned: true` is short for `{}`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def guid(value: str | None) -> str | None:
    """A GUID in lower case; empty or None (left out) stays as it is."""
    if value is None:
        return None
    return check_guid(value).lower()


def check_guid(value: str) -> str:
    """A GUID (any case) or empty, unchanged; a ValueError with an example otherwise."""
    if value and not _GUID.match(value):
        raise ValueError(f"not a GUID: {value!r} (e.g. 7f4a1c52-2b7e-4a8e-9d61-3c0f5b2d9e10)")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SystemAssigned(_Strict):
    clientId: str = ""
    objectId: str = ""

    _ids = field_validator("clientId", "objectId")(guid)


class UserAssigned(_Strict):
    clientId: str = ""
    objectId: str = ""
    resourceId: str = ""

    _ids = field_validator("clientId", "objectId")(guid)

    @field_validator("resourceId")
    @classmethod
    def _arm_id(cls, value: str) -> str:
        if value and not value.lower().startswith("/subscriptions/"):
            raise ValueError(
                "an ARM resource id, e.g. /subscriptions/<sub>/resourceGroups/<rg>/providers/"
                "Microsoft.ManagedIdentity/userAssignedIdentities/<name>"
            )
        return value


class Identities(_Strict):
    tenantId: str = ""
    systemAssigned: SystemAssigned | None = None
    userAssigned: list[UserAssigned] = Field(default_factory=list)

    _tenant = field_validator("tenantId")(guid)

    @field_validator("systemAssigned", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        return value

    @model_validator(mode="after")
    def _distinct(self) -> Identities:
        """Two identities with one id could never be told apart by a token request."""
        ids: list[str] = []
        if self.systemAssigned is not None:
            ids += [self.systemAssigned.clientId, self.systemAssigned.objectId]
        for user in self.userAssigned:
            ids += [user.clientId, user.objectId, user.resourceId.lower()]
        given = [i for i in ids if i]
        repeated = sorted({i for i in given if given.count(i) > 1})
        if repeated:
            raise ValueError(f"identity ids must be unique; repeated: {', '.join(repeated)}")
        return self

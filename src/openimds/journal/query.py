"""What a reader of the journal asks for (GET /requests and its stream): one VM, a path
prefix, a status (an exact code such as 429 or a class such as 4xx), parsed from the
query string and checked against the stored entries before they are decoded, so a
filtered read decodes only what it returns."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from openimds.web.admin_app import whole_number as admin_whole_number
from openimds.web.metadata.request_ring import Entry

_CODE = re.compile(r"[0-9]{1,3}")
_CLASS = re.compile(r"([1-5])xx", re.IGNORECASE)


class JournalError(ValueError):
    """A journal query that cannot be answered, worded for the operator."""


@dataclass(frozen=True, slots=True)
class Query:
    vm: str | None = None
    path: str | None = None  # a prefix of the entry's path, as the journal shows it
    status: tuple[int, int] | None = None  # lowest and highest status kept

    def keeps(self, entry: Entry) -> bool:
        if self.status is not None and not self.status[0] <= entry[5] <= self.status[1]:
            return False
        # The path as the entry shows it: the raw target up to "?", read as Latin-1.
        return self.path is None or (
            entry[3].partition(b"?")[0].decode("latin-1").startswith(self.path)
        )


def parse_status(raw: str) -> tuple[int, int]:
    """ "429" -> (429, 429); "4xx" -> (400, 499). Status 0 is a request a fault rule left
    unanswered."""
    if _CODE.fullmatch(raw):
        return int(raw), int(raw)
    match = _CLASS.fullmatch(raw)
    if match is None:
        raise JournalError(
            f"status: expected a code such as 429 or a class such as 4xx, got {raw!r}"
        )
    low = int(match.group(1)) * 100
    return low, low + 99


def parse_query(params: Mapping[str, str]) -> Query:
    status = params.get("status")
    return Query(
        vm=params.get("vm"),
        path=params.get("path"),
        status=None if status is None else parse_status(status),
    )


def whole_number(params: Mapping[str, str], name: str) -> int | None:
    """`after`, `limit` or Last-Event-ID, worded as every admin route words it."""
    return admin_whole_number(params, name, JournalError)

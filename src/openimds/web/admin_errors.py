"""The admin API's own refusals: one base carrying the status (docs/architecture.md,
"Admin routes"). Imports nothing, so the modules that raise them (schedules, queries,
the inventory) stay free of the web stack."""

from __future__ import annotations

from typing import ClassVar


class AdminError(Exception):
    """A request the admin API refuses, answered `status` with `{"error": str(exc)}`.
    The admin app maps this base once; subclasses set their status."""

    status: ClassVar[int] = 400

"""The features every server is built from, as data: each names its package, whose
`feature.install` says what it plugs into the server and whose `cli.COMMANDS` are its
command groups. A new feature is a package and one line in `ALL`
(docs/architecture.md, "Adding a feature")."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click

    from openimds.config import Config
    from openimds.runtime import Plug, Runtime


@dataclass(frozen=True, slots=True)
class Feature:
    """A feature as data. `package` holds `feature.install(runtime) -> Plug` (and
    optionally `feature.check(config)`, run before a start and by `config check`); `commands`
    names the command groups its `cli` module defines (`cli.COMMANDS`). Named rather
    than imported, so a command loads only its own feature's modules."""

    name: str
    package: str
    commands: tuple[str, ...] = ()

    def install(self, runtime: Runtime) -> Plug:
        installer: Callable[[Runtime], Plug] = import_module(f"{self.package}.feature").install
        return installer(runtime)

    def check(self, config: Config) -> None:
        """The feature's `check(config)`, if it has one: what `install` reads from outside
        the configuration (files), read and validated the same way, creating nothing."""
        checker: Callable[[Config], None] | None = getattr(
            import_module(f"{self.package}.feature"), "check", None
        )
        if checker is not None:
            checker(config)

    def command(self, name: str) -> click.Command:
        """One of this feature's command groups, by name."""
        groups: Sequence[click.Command] = import_module(f"{self.package}.cli").COMMANDS
        for group in groups:
            if group.name == name:
                return group
        raise LookupError(f"feature {self.name} has no command {name!r}")


ALL: tuple[Feature, ...] = (
    Feature("fleet", "openimds.fleet", commands=("vm", "capture")),
    Feature("events", "openimds.events", commands=("events",)),
    Feature("attested", "openimds.attested", commands=("ca", "attested")),
    Feature("identity", "openimds.identity", commands=("keys", "env")),
    Feature("guest", "openimds.guest"),
    Feature("faults", "openimds.faults", commands=("faults",)),
    Feature("journal", "openimds.journal", commands=("requests",)),
    Feature("series", "openimds.series"),
    Feature("testing", "openimds.testing"),
    Feature("console", "openimds.console"),
)


def command_owner(name: str) -> Feature | None:
    """The feature that provides the top-level command `name`."""
    for feature in ALL:
        if name in feature.commands:
            return feature
    return None

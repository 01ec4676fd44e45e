"""The one error of the configuration: a problem already worded for the user."""


class ConfigError(Exception):
    """A configuration problem, already worded for the user (file, field, what is allowed)."""


class FieldError(ValueError):
    """A check across settings (a model validator) that points at the one setting to
    change, so the message names it and where its value came from."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc

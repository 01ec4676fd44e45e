"""The one error of the configuration: a problem already worded for the user."""


class ConfigError(Exception):
    """A configuration problem, already worded for the user (file, field, what is allowed)."""

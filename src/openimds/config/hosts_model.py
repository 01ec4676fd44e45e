"""The `hosts` section: the managed-identity token sources served beside the VM endpoint
(docs/identity.md, "Every token source").

Each source is a listener profile of the same server: where it listens, the secret its
clients present, and the VM it speaks for. A source is on when its key is present
(`arc:` alone is enough) and `enabled` is not false; `openimds serve --host arc` turns it
on from the command line. The VM endpoint is always on and is not listed here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from openimds.config.listen import Listen, ListenAddress, parse_listen

SourceName = Literal["arc", "appservice", "azureml", "cloudshell", "servicefabric"]
SOURCES: tuple[SourceName, ...] = ("arc", "appservice", "azureml", "cloudshell", "servicefabric")
ARC_KEY_FOLDER = "/var/opt/azcmagent/tokens"  # the one folder azure-identity and msal accept
# Azure Arc's agent listens on localhost:40342 (msal's default when IDENTITY_ENDPOINT is
# unset); the other sources take any free loopback port unless told.
DEFAULT_LISTEN: dict[SourceName, ListenAddress] = {
    "arc": parse_listen("127.0.0.1:40342"),
    "appservice": parse_listen("127.0.0.1:0"),
    "azureml": parse_listen("127.0.0.1:0"),
    "cloudshell": parse_listen("127.0.0.1:0"),
    "servicefabric": parse_listen("127.0.0.1:0"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSettings(_Strict):
    enabled: bool = True
    listen: Listen | None = Field(
        None, description="HOST:PORT; Arc: 127.0.0.1:40342, others: a free loopback port"
    )
    vm: str | None = Field(None, description="the VM it speaks for (default: the first)")

    @field_validator("listen")
    @classmethod
    def _tcp(cls, value: ListenAddress | None) -> ListenAddress | None:
        if value is not None and value.is_unix:
            raise ValueError("a token source listens on HOST:PORT, not a Unix socket")
        return value


class SecretSourceSettings(SourceSettings):
    secret: SecretStr | None = Field(
        None,
        description="IDENTITY_HEADER / MSI_SECRET; generated once and kept in the state store",
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        text = None if value is None else value.get_secret_value()
        if text is not None and (len(text) < 16 or not text.isascii() or not text.isprintable()):
            raise ValueError("a secret must be at least 16 printable ASCII characters")
        return value


class ArcSettings(SourceSettings):
    key_folder: str = Field(
        ARC_KEY_FOLDER,
        description="where challenge key files go; azure-identity and msal read only "
        + ARC_KEY_FOLDER,
    )

    @field_validator("key_folder")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"key_folder must be an absolute path, got {value!r}")
        return value.rstrip("/") or "/"


class HostsSettings(_Strict):
    """Token sources beside the VM endpoint; a key present turns its source on."""

    arc: ArcSettings | None = None
    appservice: SecretSourceSettings | None = None
    azureml: SecretSourceSettings | None = None
    cloudshell: SourceSettings | None = None
    servicefabric: SecretSourceSettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_keys(cls, data: Any) -> Any:
        # `arc:` with nothing after it (YAML null) means "on, with the defaults".
        if isinstance(data, dict):
            return {k: ({} if v is None and k in SOURCES else v) for k, v in data.items()}
        return data

    def enabled(self) -> list[tuple[SourceName, SourceSettings]]:
        """The sources that are on, in a fixed order."""
        found = [(name, getattr(self, name)) for name in SOURCES]
        return [(name, s) for name, s in found if s is not None and s.enabled]

    @staticmethod
    def listen_of(name: SourceName, settings: SourceSettings) -> ListenAddress:
        return settings.listen or DEFAULT_LISTEN[name]

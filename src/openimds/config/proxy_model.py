"""The `proxy` section: signed edge-proxy identity (docs/fleet.md).

Off until a secret is set (`secret`, `secret_file`, or OPENIMDS_PROXY_SECRET); with no
secret the proxy headers are ordinary headers, never read.
"""

from __future__ import annotations

import re

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    field_validator,
    model_validator,
)

# RFC 9110 5.6.2: a header name is a token.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers the metadata listener reads for its own rules: a proxy header cannot be one.
RESERVED_HEADERS = frozenset(
    {
        "metadata",
        "x-forwarded-for",
        "content-length",
        "transfer-encoding",
        "expect",
        "connection",
        "proxy-connection",
        "host",
    }
)


class ProxySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: SecretStr | None = Field(
        None, description="shared with the proxy (at least 16 characters); turns the headers on"
    )
    secret_file: str | None = Field(
        None, description="a file holding the secret (surrounding whitespace ignored)"
    )
    sources: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="addresses or networks the proxy connects from; empty: every caller "
        "must be signed",
    )
    max_age: int = Field(
        60,
        ge=0,
        le=86400,
        description="seconds a signed timestamp stays valid, either side of now; 0: the "
        "signature covers the VM alone and no timestamp header is sent",
    )
    vm_header: str = Field("X-OpenIMDS-VM", description="names the VM (its name or vmId)")
    timestamp_header: str = Field("X-OpenIMDS-Timestamp", description="Unix seconds")
    signature_header: str = Field(
        "X-OpenIMDS-Signature", description='hex HMAC-SHA256 of "<vm>|<timestamp>"'
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value())
        return value

    @field_validator("vm_header", "timestamp_header", "signature_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not _TOKEN.fullmatch(value):
            raise ValueError(f"not an HTTP header name: {value!r}")
        if value.lower() in RESERVED_HEADERS:
            raise ValueError(f"{value} is a header IMDS reads for its own rules")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ProxySettings:
        if self.secret is not None and self.secret_file is not None:
            raise ValueError("give secret or secret_file, not both")
        names = [self.vm_header.lower(), self.timestamp_header.lower()]
        names.append(self.signature_header.lower())
        if len(set(names)) != 3:
            raise ValueError("vm_header, timestamp_header and signature_header must differ")
        return self

    @property
    def enabled(self) -> bool:
        return self.secret is not None or self.secret_file is not None

    @property
    def proxy_only(self) -> bool:
        """Every caller comes through the proxy, which names its VM: VMs need no
        addresses."""
        return self.enabled and not self.sources


def check_secret(text: str) -> None:
    if len(text) < 16 or not text.isascii() or not text.isprintable():
        raise ValueError("the proxy secret must be at least 16 printable ASCII characters")

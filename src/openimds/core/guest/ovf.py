"""ovf-env.xml: the provisioning document Azure puts on the VM's provisioning media.

The layout is Azure's own (WALinuxAgent's tests/data/ovf-env.xml is a sample), in the
form both readers take: cloud-init's `OvfEnvXml.parse_text` (HostName required; the
`wa` namespace on every provisioning element) and waagent's `OvfEnv` (UserName,
`wa:Version` and `ProvisionGuestAgent` required; `ProvisionGuestAgent` false makes it
disable itself, so it is always true here). See docs/guests.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Azure's limits on what osProfile takes (ARM refuses more; cloud-init refuses a password
# longer than 72 too: errors.MAX_PASSWORD_LENGTH).
MAX_CUSTOM_DATA = 65535
PASSWORD_LENGTHS = (6, 72)
_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----(?P<body>.*?)-----END CERTIFICATE-----", re.S
)
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,63})$")


class NotProvisionable(ValueError):
    """The VM lacks, or has a bad, value the provisioning document needs; the message
    names the field."""


@dataclass(frozen=True)
class SshKey:
    """One key to install: an OpenSSH public key line (`value`), or a certificate's
    SHA-1 thumbprint (`fingerprint`, upper-case hex) that names the key among the
    VM's certificates, as Azure sends keys given as certificates."""

    path: str
    value: str = ""
    fingerprint: str = ""


@dataclass(frozen=True)
class Provisioning:
    hostname: str
    username: str
    keys: tuple[SshKey, ...] = ()
    disable_password_auth: bool = True
    password: str = ""
    custom_data: bytes = b""


def authorized_keys_path(username: str) -> str:
    """Where Azure puts a key whose path is not given."""
    return f"/home/{username}/.ssh/authorized_keys"


def ssh_key(key_data: str, path: str) -> SshKey:
    """A compute.publicKeys entry as the document carries it."""
    match = _CERTIFICATE.search(key_data)
    if match is None and "-----BEGIN CERTIFICATE-----" not in key_data:
        return SshKey(path=path, value=key_data.strip())
    try:
        if match is None:
            raise binascii.Error("no end marker")
        der = base64.b64decode("".join(match["body"].split()), validate=True)
    except binascii.Error:
        raise NotProvisionable(
            "compute.publicKeys: keyData holds a certificate that is not PEM (base64 "
            "between BEGIN and END CERTIFICATE lines)"
        ) from None
    return SshKey(path=path, fingerprint=hashlib.sha1(der).hexdigest().upper())


def from_instance(
    instance: Mapping[str, Any],
    *,
    username: str = "",
    extra_keys: tuple[str, ...] = (),
    password: str = "",
    custom_data: bytes = b"",
) -> Provisioning:
    """What a VM's instance document (as the admin API shows it) provisions: osProfile's
    computerName (else compute.name), adminUsername (`username` fills or replaces it),
    disablePasswordAuthentication, compute.publicKeys plus `extra_keys` (OpenSSH lines).
    The password and custom data are never in the instance document (IMDS does not serve
    them), so they are given here."""
    compute = instance.get("compute") or {}
    profile = compute.get("osProfile") or {}
    hostname = str(profile.get("computerName") or compute.get("name") or "")
    user = username or str(profile.get("adminUsername") or "")
    if not hostname:
        raise NotProvisionable(
            "osProfile.computerName (or compute.name) is empty: the guest needs a host name"
        )
    if not _HOSTNAME.match(hostname):
        raise NotProvisionable(
            f"osProfile.computerName {hostname!r} is not a Linux host name (letters, digits, "
            "hyphens; at most 64)"
        )
    if not user:
        raise NotProvisionable(
            "osProfile.adminUsername is empty: media provisions an admin user (give "
            "osProfile.adminUsername, or --admin-username); a guest provisioned from IMDS "
            "alone boots without media"
        )
    keys = [
        ssh_key(str(entry.get("keyData") or ""), str(entry.get("path") or ""))
        for entry in compute.get("publicKeys") or []
        if entry.get("keyData")
    ]
    keys += [SshKey(path="", value=line.strip()) for line in extra_keys]
    default = authorized_keys_path(user)
    keys = [k if k.path else SshKey(default, k.value, k.fingerprint) for k in keys]
    return Provisioning(
        hostname=hostname,
        username=user,
        keys=tuple(keys),
        disable_password_auth=_password_policy(profile.get("disablePasswordAuthentication")),
        password=_checked_password(password),
        custom_data=_checked_custom_data(custom_data),
    )


def _password_policy(flag: Any) -> bool:
    # Azure's default for a Linux VM is SSH keys only; the document always says which.
    return str(flag or "").lower() != "false"


def _checked_password(password: str) -> str:
    low, high = PASSWORD_LENGTHS
    if password and not low <= len(password) <= high:
        raise NotProvisionable(
            f"admin password: {len(password)} characters; Azure takes {low} to {high}"
        )
    classes = [r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"]
    if password and sum(bool(re.search(c, password)) for c in classes) < 3:
        raise NotProvisionable(
            "admin password: Azure needs 3 of: a lower-case letter, an upper-case letter, "
            "a digit, a special character"
        )
    return password


def _checked_custom_data(data: bytes) -> bytes:
    if len(data) > MAX_CUSTOM_DATA:
        raise NotProvisionable(
            f"custom data: {len(data)} bytes; Azure takes at most {MAX_CUSTOM_DATA}"
        )
    return data


def _text(value: str) -> str:
    """XML character data."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ovf_env(p: Provisioning) -> bytes:
    """The document, UTF-8, as Azure writes it."""
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"'
        ' xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"'
        ' xmlns:wa="http://schemas.microsoft.com/windowsazure"'
        ' xmlns:i="http://www.w3.org/2001/XMLSchema-instance">',
        "  <wa:ProvisioningSection>",
        "    <wa:Version>1.0</wa:Version>",
        '    <LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure"'
        ' xmlns:i="http://www.w3.org/2001/XMLSchema-instance">',
        "      <ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>",
        f"      <HostName>{_text(p.hostname)}</HostName>",
        f"      <UserName>{_text(p.username)}</UserName>",
    ]
    if p.password:
        lines.append(f"      <UserPassword>{_text(p.password)}</UserPassword>")
    flag = "true" if p.disable_password_auth else "false"
    lines.append(
        f"      <DisableSshPasswordAuthentication>{flag}</DisableSshPasswordAuthentication>"
    )
    lines += _ssh_section(p.keys)
    if p.custom_data:
        encoded = base64.b64encode(p.custom_data).decode("ascii")
        lines.append(f"      <CustomData>{encoded}</CustomData>")
    lines += [
        "    </LinuxProvisioningConfigurationSet>",
        "  </wa:ProvisioningSection>",
        "  <wa:PlatformSettingsSection>",
        "    <wa:Version>1.0</wa:Version>",
        "    <wa:PlatformSettings>",
        "      <wa:KmsServerHostname>kms.core.windows.net</wa:KmsServerHostname>",
        "      <wa:ProvisionGuestAgent>true</wa:ProvisionGuestAgent>",
        '      <wa:GuestAgentPackageName i:nil="true" />',
        "      <wa:RetainWindowsPEPassInUnattend>true</wa:RetainWindowsPEPassInUnattend>",
        "      <wa:RetainOfflineServicingPassInUnattend>true"
        "</wa:RetainOfflineServicingPassInUnattend>",
        "      <wa:PreprovisionedVm>false</wa:PreprovisionedVm>",
        "    </wa:PlatformSettings>",
        "  </wa:PlatformSettingsSection>",
        "</Environment>",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _ssh_section(keys: tuple[SshKey, ...]) -> list[str]:
    if not keys:
        return []
    lines = ["      <SSH>", "        <PublicKeys>"]
    for key in keys:
        lines.append("          <PublicKey>")
        if key.fingerprint:
            lines.append(f"            <Fingerprint>{key.fingerprint}</Fingerprint>")
        lines.append(f"            <Path>{_text(key.path)}</Path>")
        if key.value:
            lines.append(f"            <Value>{_text(key.value)}</Value>")
        lines.append("          </PublicKey>")
    lines += ["        </PublicKeys>", "      </SSH>"]
    return lines

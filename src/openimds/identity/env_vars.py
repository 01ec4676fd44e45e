"""The environment that makes azure-identity and msal pick one token source and reach this
server (`openimds env`), from the admin API's `/identity/hosts` answer.

azure-identity's ManagedIdentityCredential and msal's ManagedIdentityClient choose their
source from variables alone (docs/identity.md, "Every token source"): Service Fabric with
IDENTITY_ENDPOINT + IDENTITY_HEADER + IDENTITY_SERVER_THUMBPRINT, App Service with the
first two, Arc with IDENTITY_ENDPOINT + IMDS_ENDPOINT, Azure ML with MSI_ENDPOINT +
MSI_SECRET, Cloud Shell with MSI_ENDPOINT alone, else the VM endpoint. So a choice sets its
variables and unsets every other one that would win over it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

Choice = Literal[
    "vm", "arc", "appservice", "appservice-legacy", "azureml", "cloudshell", "servicefabric"
]
CHOICES: tuple[Choice, ...] = (
    "vm",
    "arc",
    "appservice",
    "appservice-legacy",
    "azureml",
    "cloudshell",
    "servicefabric",
)
Shell = Literal["bash", "fish", "pwsh", "dotenv"]
SHELLS: tuple[Shell, ...] = ("bash", "fish", "pwsh", "dotenv")

# Every variable that steers the choice; what a choice does not set, it unsets.
STEERING = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IDENTITY_API_VERSION",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZUREPS_HOST_ENVIRONMENT",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "MSAL_MANAGED_IDENTITY_ENDPOINT",
)
# Which listener serves each choice: App Service's legacy protocol is its own endpoint.
SERVED_BY: dict[Choice, str] = {c: str(c) for c in CHOICES}
SERVED_BY["appservice-legacy"] = "appservice"


class NotServed(Exception):
    """The server does not run the listener a choice needs."""


def variables(choice: Choice, hosts: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The variables to set for `choice`, given the admin API's list of hosts."""
    by_name = {str(h["name"]): h for h in hosts}
    host = by_name.get(SERVED_BY[choice])
    if host is None or not host.get("url"):
        raise NotServed(SERVED_BY[choice])
    base = str(host["url"]).rstrip("/")
    token_url = base + str(host["tokenPath"])
    secret = str(host.get("secret", ""))
    if choice == "vm":
        # Both SDKs replace http://169.254.169.254 with the first (azure-identity imds.py,
        # msal _obtain_token_on_azure_vm); the second, the token URL, is read by some msal
        # versions and ignored by the pinned ones, so setting it cannot change their choice.
        return {
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": base,
            "MSAL_MANAGED_IDENTITY_ENDPOINT": token_url,
        }
    if choice == "arc":
        return {"IDENTITY_ENDPOINT": token_url, "IMDS_ENDPOINT": base}
    if choice == "appservice":
        return {"IDENTITY_ENDPOINT": token_url, "IDENTITY_HEADER": secret}
    if choice in ("appservice-legacy", "azureml"):
        return {"MSI_ENDPOINT": token_url, "MSI_SECRET": secret}
    if choice == "cloudshell":
        # msal recognises Cloud Shell by this variable (msal/cloudshell.py).
        return {"MSI_ENDPOINT": token_url, "AZUREPS_HOST_ENVIRONMENT": "cloud-shell/1.0"}
    return {
        "IDENTITY_ENDPOINT": token_url,
        "IDENTITY_HEADER": secret,
        "IDENTITY_SERVER_THUMBPRINT": str(host["thumbprint"]),
        "IDENTITY_API_VERSION": "2019-07-01-preview",
    }


def render(values: Mapping[str, str], shell: Shell) -> str:
    """Lines for `shell` that set `values` and unset the other steering variables (a
    dotenv file describes a fresh environment, so it has no unsets)."""
    unset = [name for name in STEERING if name not in values]
    if shell == "bash":
        lines = [f"export {k}={_posix(v)}" for k, v in values.items()]
        lines += [f"unset {' '.join(unset)}"] if unset else []
    elif shell == "fish":
        lines = [f"set -gx {k} {_fish(v)}" for k, v in values.items()]
        lines += [f"set -e {name}" for name in unset]
    elif shell == "pwsh":
        lines = [f"$env:{k} = {_pwsh(v)}" for k, v in values.items()]
        lines += [f"Remove-Item Env:{n} -ErrorAction SilentlyContinue" for n in unset]
    else:
        lines = [f"{k}={_double(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def _posix(value: str) -> str:
    # A single-quoted word ends only at a quote: close, add an escaped quote, reopen.
    return "'" + value.replace("'", "'\\''") + "'"


def _fish(value: str) -> str:
    # fish reads \\ and \' inside single quotes.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _pwsh(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _double(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

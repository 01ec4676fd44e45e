"""The shell side of the token sources: the `hosts:` config section, Arc's key files, and
the variables `openimds env` prints."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from openimds.config import ConfigError, effective, load_config
from openimds.config.hosts_model import ARC_KEY_FOLDER
from openimds.identity.arc_keys import KeyFileChallenges, prepare_folder
from openimds.identity.env_vars import STEERING, NotServed, render, variables

# -- config --------------------------------------------------------------------------------

ENV = {"OPENIMDS_STATE": ":memory:"}


def config_from(tmp_path: Path, text: str, **flags: object) -> object:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(str(path), env=ENV, flags=flags)


def test_a_bare_key_turns_a_source_on_with_defaults(tmp_path: Path) -> None:
    config = config_from(tmp_path, "hosts:\n  arc:\n  appservice: {enabled: false}\n")
    enabled = config.hosts.enabled()  # type: ignore[attr-defined]
    assert [name for name, _ in enabled] == ["arc"]
    assert str(config.hosts.listen_of("arc", enabled[0][1])) == "127.0.0.1:40342"  # type: ignore[attr-defined]


def test_the_host_flag_merges_with_the_file(tmp_path: Path) -> None:
    config = config_from(
        tmp_path,
        "hosts:\n  azureml: {listen: '127.0.0.1:5001', enabled: false}\n",
        **{"hosts.azureml.enabled": True, "hosts.cloudshell.enabled": True},
    )
    enabled = dict(config.hosts.enabled())  # type: ignore[attr-defined]
    assert set(enabled) == {"azureml", "cloudshell"}
    assert str(enabled["azureml"].listen) == "127.0.0.1:5001"


def test_a_configured_secret_is_redacted(tmp_path: Path) -> None:
    config = config_from(tmp_path, "hosts:\n  appservice: {secret: 0123456789abcdefXYZ}\n")
    assert "0123456789abcdefXYZ" not in str(effective(config))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "flags", "message"),
    [
        ("hosts:\n  arc: {vm: nope}\n", {}, "hosts.arc.vm: no VM is named 'nope'"),
        ("hosts:\n  appservice: {secret: short}\n", {}, "at least 16 printable ASCII"),
        ("hosts:\n  arc: {listen: 'unix:/tmp/x'}\n", {}, "not a Unix socket"),
        ("hosts:\n  arc: {key_folder: tokens}\n", {}, "absolute path"),
        ("hosts:\n  sharepoint: {}\n", {}, "sharepoint"),
        ("hosts:\n  arc: {listen: '127.0.0.1:8080'}\n", {}, "is server.listen too"),
        (
            "hosts:\n  arc: {listen: '127.0.0.1:7000'}\n  azureml: {listen: '127.0.0.1:7000'}\n",
            {},
            "hosts.azureml.listen: 127.0.0.1:7000 is hosts.arc.listen too",
        ),
        ("hosts: {}\n", {"hosts.arc.enabled": "maybe"}, "flag --host arc"),
    ],
)
def test_hosts_errors_are_clear(
    tmp_path: Path, text: str, flags: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from(tmp_path, text, **flags)
    assert message in str(caught.value)


# -- Arc key files -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_key_files_are_private_one_use_and_expire(tmp_path: Path) -> None:
    clock = Clock()
    book = KeyFileChallenges(str(tmp_path), clock=clock, lifetime=60)
    path = Path(book.issue())
    assert path.parent == tmp_path and stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text()
    assert len(secret) == 64 and "\n" not in secret
    assert not book.redeem(secret + "0") and path.exists()
    assert book.redeem(secret) and not path.exists()
    assert not book.redeem(secret)
    late = Path(book.issue())
    clock.now += 61
    assert not book.redeem(late.read_text()) and not late.exists()
    stale = Path(book.issue())
    clock.now += 61
    book.prune()
    assert not stale.exists() and len(book) == 0


def test_key_files_are_bounded_and_removed_at_close(tmp_path: Path) -> None:
    book = KeyFileChallenges(str(tmp_path), limit=3)
    first = Path(book.issue())
    rest = [Path(book.issue()) for _ in range(3)]
    assert not first.exists() and len(book) == 3
    book.close()
    assert not any(p.exists() for p in rest) and list(tmp_path.iterdir()) == []


def test_a_folder_only_root_can_create_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ConfigError) as caught:
        prepare_folder(ARC_KEY_FOLDER + "-missing-for-test")
    text = str(caught.value)
    assert "does not exist" in text and "Run openimds as root" in text
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    folder = tmp_path / "a" / "tokens"
    prepare_folder(str(folder))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


# -- openimds env ----------------------------------------------------------------------------

TOKEN = "/metadata/identity/oauth2/token"
HOSTS = [
    {"name": "vm", "url": "http://127.0.0.1:8080", "tokenPath": TOKEN},
    {"name": "arc", "url": "http://127.0.0.1:40342", "tokenPath": TOKEN},
    {"name": "appservice", "url": "http://127.0.0.1:9001", "tokenPath": "/msi/token",
     "secret": "as"},
    {"name": "azureml", "url": "http://127.0.0.1:9002", "tokenPath": "/msi/token",
     "secret": "ml"},
    {"name": "cloudshell", "url": "http://127.0.0.1:9003", "tokenPath": "/oauth2/token"},
    {"name": "servicefabric", "url": "https://127.0.0.1:9004", "tokenPath": TOKEN,
     "secret": "sf", "thumbprint": "AB12"},
]  # fmt: skip


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("vm", {"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:8080",
                "MSAL_MANAGED_IDENTITY_ENDPOINT":
                "http://127.0.0.1:8080/metadata/identity/oauth2/token"}),
        ("arc", {"IDENTITY_ENDPOINT": "http://127.0.0.1:40342/metadata/identity/oauth2/token",
                 "IMDS_ENDPOINT": "http://127.0.0.1:40342"}),
        ("appservice", {"IDENTITY_ENDPOINT": "http://127.0.0.1:9001/msi/token",
                        "IDENTITY_HEADER": "as"}),
        ("appservice-legacy", {"MSI_ENDPOINT": "http://127.0.0.1:9001/msi/token",
                               "MSI_SECRET": "as"}),
        ("azureml", {"MSI_ENDPOINT": "http://127.0.0.1:9002/msi/token", "MSI_SECRET": "ml"}),
        ("cloudshell", {"MSI_ENDPOINT": "http://127.0.0.1:9003/oauth2/token",
                        "AZUREPS_HOST_ENVIRONMENT": "cloud-shell/1.0"}),
        ("servicefabric", {"IDENTITY_ENDPOINT":
                           "https://127.0.0.1:9004/metadata/identity/oauth2/token",
                           "IDENTITY_HEADER": "sf", "IDENTITY_SERVER_THUMBPRINT": "AB12",
                           "IDENTITY_API_VERSION": "2019-07-01-preview"}),
    ],
)  # fmt: skip
def test_variables_per_source(choice: str, expected: dict[str, str]) -> None:
    assert variables(choice, HOSTS) == expected  # type: ignore[arg-type]


def test_a_source_not_served() -> None:
    with pytest.raises(NotServed, match="appservice"):
        variables("appservice-legacy", HOSTS[:2])


def test_render_sets_and_unsets_per_shell() -> None:
    values = {"MSI_ENDPOINT": "http://x/y", "MSI_SECRET": "it's"}
    others = [name for name in STEERING if name not in values]
    bash = render(values, "bash")
    assert bash.startswith("export MSI_ENDPOINT='http://x/y'\nexport MSI_SECRET='it'\\''s'\n")
    assert bash.endswith(f"unset {' '.join(others)}\n")
    assert "set -gx MSI_SECRET 'it\\'s'" in render(values, "fish")
    assert "set -e IDENTITY_HEADER" in render(values, "fish")
    pwsh = render(values, "pwsh")
    assert "$env:MSI_SECRET = 'it''s'" in pwsh
    assert "Remove-Item Env:IMDS_ENDPOINT -ErrorAction SilentlyContinue" in pwsh
    assert render(values, "dotenv") == 'MSI_ENDPOINT="http://x/y"\nMSI_SECRET="it\'s"\n'

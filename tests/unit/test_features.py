"""The feature list as data: every package it names has what the list promises."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import click
import pytest
from click.testing import CliRunner

from openimds import features
from openimds.cli.main import main


@pytest.mark.parametrize("feature", features.ALL, ids=lambda f: f.name)
def test_each_feature_package_has_an_installer(feature: features.Feature) -> None:
    module = import_module(f"{feature.package}.feature")
    assert callable(module.install)


@pytest.mark.parametrize("feature", [f for f in features.ALL if f.commands], ids=lambda f: f.name)
def test_each_declared_command_is_defined_by_its_feature(feature: features.Feature) -> None:
    for name in feature.commands:
        command = feature.command(name)
        assert isinstance(command, click.Command)
        assert command.name == name


def test_the_cli_lists_every_feature_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for feature in features.ALL:
        for name in feature.commands:
            assert f"  {name} " in result.output


def test_an_unknown_command_is_refused() -> None:
    result = CliRunner().invoke(main, ["nonsense"])
    assert result.exit_code == 2
    assert "No such command 'nonsense'" in result.output


def test_finding_the_admin_token_loads_no_server_parts() -> None:
    # The CLI's token lookup must not import the runtime, Starlette or prometheus.
    code = (
        "import sys, openimds.cli.admin_client, openimds.config.admin_token\n"
        "heavy = [m for m in ('starlette', 'prometheus_client', 'uvicorn', 'openimds.runtime')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


def test_a_feature_command_loads_only_its_own_feature() -> None:
    code = (
        "import sys\n"
        "from openimds import features\n"
        "features.command_owner('keys').command('keys')\n"
        "print(','.join(m for m in ('openimds.events.cli', 'openimds.attested.cli')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""

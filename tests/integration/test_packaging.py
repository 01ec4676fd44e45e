"""The package as users get it: a wheel and an sdist built offline from this tree, the wheel
installed into a fresh venv, and the installed `openimds` serving and the installed pytest
plugin registering its option."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import READY

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 180  # seconds for any one build or install step


def _run(*cmd: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=LIMIT,
        check=False,
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel and an sdist of this tree, with the installed setuptools and no network."""
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", out, ".")  # fmt: skip
    _run(
        sys.executable,
        "-c",
        f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})",
    )
    return out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("openimds-*.whl")
    return wheel


def test_the_wheel_holds_the_package_data_and_entry_points_but_no_tests(dist: Path) -> None:
    with zipfile.ZipFile(_wheel(dist)) as wheel:
        names = wheel.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        text = wheel.read(entry_points).decode()
    assert "openimds/data/demo-vm.json" in names
    assert "openimds/testing/plugin.py" in names
    # The console's templates and assets: nothing is fetched from elsewhere at run time.
    for shipped in (
        "openimds/console/templates/base.html",
        "openimds/console/static/console.js",
        "openimds/console/static/console.css",
        "openimds/console/static/vendor/htmx-2.0.11.min.js",
        "openimds/console/static/vendor/uPlot-1.6.32.iife.min.js",
        "openimds/console/static/vendor/LICENSES.txt",
    ):
        assert shipped in names
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    assert "[pytest11]\nopenimds = openimds.testing.plugin" in text
    assert "[console_scripts]\nopenimds = openimds.cli.main:main" in text


def test_the_sdist_holds_the_sources_and_the_package_data(dist: Path) -> None:
    (sdist,) = dist.glob("openimds-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert "openimds-0.1.0/pyproject.toml" in names
    assert "openimds-0.1.0/src/openimds/data/demo-vm.json" in names
    assert "openimds-0.1.0/src/openimds/cli/main.py" in names


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel; its dependencies come from this test's venv through a
    .pth file (a path a .pth adds is not a site directory, so the editable install's hooks
    there are not run and `openimds` can only come from the wheel)."""
    root = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", root)
    python = root / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
         "--no-index", _wheel(dist), env=_env())  # fmt: skip
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = _run(python, "-c", code, env=_env()).strip()
    Path(site, "test-venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return root


def _env() -> dict[str, str]:
    """This environment without what would make the worktree's code or the test venv win
    (PYTHONPATH would also make pip see the source tree's egg-info as installed)."""
    drop = ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("OPENIMDS_")}


def test_the_installed_package_is_the_wheel(venv: Path) -> None:
    where = _run(venv / "bin" / "python", "-c", "import openimds; print(openimds.__file__)",
                 cwd=venv, env=_env())  # fmt: skip
    assert where.startswith(str(venv))


@pytest.fixture
def installed_server(venv: Path, tmp_path: Path) -> Iterator[str]:
    log = tmp_path / "server.log"
    cmd = [str(venv / "bin" / "openimds"), "serve", "--listen", "127.0.0.1:0",
           "--admin-listen", f"unix:{tmp_path / 'admin.sock'}", "--state", "memory:"]  # fmt: skip
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT, env=_env()
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if match := READY.search(log.read_text(errors="replace")):
                yield match.group(1)
                return
            time.sleep(0.05)
        raise AssertionError("the installed server did not start:\n" + log.read_text())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_installed_command_serves_instance_metadata(installed_server: str) -> None:
    answer = httpx.get(
        installed_server + "/metadata/instance?api-version=2021-02-01",
        headers={"Metadata": "true"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.json()["compute"]["name"]


def test_the_installed_pytest_plugin_registers_its_option(venv: Path, tmp_path: Path) -> None:
    # Run from an empty directory so this repository's conftest and ini are not read.
    shown = _run(venv / "bin" / "python", "-m", "pytest", "--help", cwd=tmp_path, env=_env())
    assert "--imds-subprocess" in shown

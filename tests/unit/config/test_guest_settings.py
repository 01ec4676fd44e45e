"""The `guest` settings: off by default, HOST:PORT only, never another listener's
address; from the file, the environment and the flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from openimds.config import ConfigError, load_config


def _load(tmp: Path, text: str, env: dict[str, str] | None = None) -> object:
    path = tmp / "c.yaml"
    path.write_text(text)
    return load_config(str(path), env=env or {})


def test_off_by_default(tmp_path: Path) -> None:
    config = load_config(None, env={})
    assert config.guest.wireserver.listen is None and config.guest.hostgaplugin.listen is None


def test_from_the_environment(tmp_path: Path) -> None:
    config = load_config(
        None,
        env={
            "OPENIMDS_WIRESERVER_LISTEN": "168.63.129.16:80",
            "OPENIMDS_HOSTGAPLUGIN_LISTEN": "168.63.129.16:32526",
        },
    )
    assert str(config.guest.wireserver.listen) == "168.63.129.16:80"
    assert config.guest.hostgaplugin.listen is not None
    assert config.guest.hostgaplugin.listen.port == 32526


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("guest: {wireserver: {listen: 'unix:/tmp/x'}}", "guests reach it over TCP"),
        ("guest: {wireserver: {listen: '127.0.0.1:8080'}}", "is server.listen too"),
        (
            "guest: {wireserver: {listen: '127.0.0.1:9000'},"
            " hostgaplugin: {listen: '127.0.0.1:9000'}}",
            "is guest.wireserver.listen too",
        ),
        ("guest: {wireserver_url: 'ftp://x'}", "expected an http(s) URL"),
        ("guest: {rate_limit: -1}", "guest.rate_limit"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text + "\n")
    assert words in str(caught.value)


def test_the_flag_is_named_in_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, env={}, flags={"guest.wireserver.listen": "nonsense"})
    assert "--wireserver-listen" in str(caught.value)

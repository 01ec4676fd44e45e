"""The reference backend: plain dictionaries, nothing kept across restarts."""

from __future__ import annotations


class MemoryStore:
    def __init__(self) -> None:
        self._settings: dict[str, str] = {}

    def get_setting(self, key: str) -> str | None:
        return self._settings.get(key)

    def put_setting(self, key: str, value: str) -> None:
        self._settings[key] = value

    def put_setting_once(self, key: str, value: str) -> str:
        return self._settings.setdefault(key, value)

    def close(self) -> None:
        self._settings.clear()

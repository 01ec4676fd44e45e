"""A transport that records what is written to it and replays it later, in order: how a
hook's delay holds back an answer (and the ones pipelined behind it) without the
listener's normal path checking for delays."""

from __future__ import annotations

import asyncio
from typing import Any


class DeferredTransport(asyncio.Transport):
    """Stands in for `real` while an answer is delayed; `replay` sends what was written."""

    def __init__(self, real: asyncio.Transport) -> None:
        super().__init__()
        self.real = real
        self._ops: list[tuple[str, bytes]] = []
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._ops.append(("write", bytes(data)))

    def write_eof(self) -> None:
        self._ops.append(("eof", b""))

    def can_write_eof(self) -> bool:
        return self.real.can_write_eof()

    def close(self) -> None:
        self._closing = True
        self._ops.append(("close", b""))

    def abort(self) -> None:
        # Dropping a connection does not wait for the delay.
        self._ops.clear()
        self.real.abort()

    def is_closing(self) -> bool:
        return self._closing or self.real.is_closing()

    def get_write_buffer_size(self) -> int:
        return self.real.get_write_buffer_size()

    def pause_reading(self) -> None:
        self.real.pause_reading()

    def resume_reading(self) -> None:
        pass  # reading stays paused until the delayed answer is out

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.real.get_extra_info(name, default)

    def replay(self) -> None:
        real = self.real
        for op, data in self._ops:
            if real.is_closing():
                break
            if op == "write":
                real.write(data)
            elif op == "eof":
                real.write_eof()
            else:
                real.close()
        self._ops.clear()

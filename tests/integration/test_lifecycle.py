"""Starting and stopping: clear startup errors, graceful SIGTERM, the warm-ups after a start."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openimds.config import load_config
from openimds.features import ALL
from openimds.runtime import build_runtime
from openimds.server import serve
from openimds.store import StoreError
from tests.support.cli import run_openimds
from tests.support.rawhttp import RawConnection, get
from tests.support.server import start_server

LEAF = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"
FLEET = next(f for f in ALL if f.name == "fleet")


@pytest.fixture
def busy_port() -> Iterator[int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    yield holder.getsockname()[1]
    holder.close()


def _serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    defaults = {
        "--listen": "127.0.0.1:0",
        "--admin-listen": "127.0.0.1:0",
        "--state": str(tmp_path / "state.db"),
    }
    given = dict(zip(args[::2], args[1::2], strict=True))
    flags = [x for kv in {**defaults, **given}.items() for x in kv]
    return run_openimds(
        "serve", *flags, env={"OPENIMDS_ADMIN_TOKEN": "test-admin-token-0123456789"}
    )


def _assert_one_clear_message(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert "openimds: metadata on" not in output  # never claimed to be ready
    for word in words:
        assert word in output, output


def test_metadata_port_in_use(tmp_path: Path, busy_port: int) -> None:
    result = _serve(tmp_path, "--listen", f"127.0.0.1:{busy_port}")
    _assert_one_clear_message(result, "cannot listen", str(busy_port), "in use")
    assert result.stderr.count("openimds:") == 1


def test_admin_port_in_use(tmp_path: Path, busy_port: int) -> None:
    result = _serve(tmp_path, "--admin-listen", f"127.0.0.1:{busy_port}")
    _assert_one_clear_message(result, "cannot listen", str(busy_port), "in use")


def test_live_admin_socket_in_use(tmp_path: Path) -> None:
    path = tmp_path / "admin.sock"
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    holder.bind(str(path))
    holder.listen()
    try:
        result = _serve(tmp_path, "--admin-listen", f"unix:{path}")
    finally:
        holder.close()
    _assert_one_clear_message(result, "cannot listen", str(path), "in use")


@pytest.mark.parametrize("kind", ["directory", "parent-is-file", "corrupt"])
def test_bad_state_path(tmp_path: Path, kind: str) -> None:
    state = tmp_path / "state.db"
    if kind == "directory":
        state.mkdir()
    elif kind == "parent-is-file":
        (tmp_path / "file").write_text("x")
        state = tmp_path / "file" / "state.db"
    else:
        state.write_bytes(b"garbage" * 200)
    result = _serve(tmp_path, "--state", str(state))
    _assert_one_clear_message(result, str(state))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_sigterm_stops_gracefully(tmp_path: Path) -> None:
    running = start_server(tmp_path)
    with RawConnection(running.metadata_url) as idle:
        idle.send(get(LEAF))
        assert idle.read_response().status == 200
        assert running.stop(signal.SIGTERM) == 0
        assert idle.is_closed_by_peer(timeout=2)  # open connections are closed
    with pytest.raises(OSError):
        socket.create_connection(
            ("127.0.0.1", int(running.metadata_url.rsplit(":", 1)[1])), timeout=2
        )
    with pytest.raises(httpx.ConnectError):
        httpx.get(running.admin_url + "/healthz", timeout=2)
    assert "Traceback" not in running.output


def test_sigint_stops_gracefully(tmp_path: Path) -> None:
    running = start_server(tmp_path)
    assert running.get(LEAF).text == "demo-vm"
    assert running.stop(signal.SIGINT) == 0
    assert "Traceback" not in running.output


def test_warm_ups_begin_once_serving_and_let_requests_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flags = {"state.path": "memory:", "server.listen": "127.0.0.1:0"}
    flags["admin.listen"] = f"unix:{tmp_path / 'admin.sock'}"
    runtime = build_runtime(load_config(None, env={}, flags=flags), [FLEET])
    ready = threading.Event()
    steps: list[bool] = []  # per step: were the listeners up?

    def failing() -> Iterator[None]:
        raise StoreError("the store is away")
        yield

    def slow() -> Iterator[None]:
        for _ in range(100):
            steps.append(ready.is_set())
            time.sleep(0.01)
            yield

    runtime.warmups.extend([failing, slow])

    async def main() -> tuple[int, int]:
        loop, stop = asyncio.get_running_loop(), asyncio.Event()
        serving = asyncio.create_task(serve(runtime, stop=stop, on_ready=ready.set))
        assert await loop.run_in_executor(None, ready.wait, 30)
        url = runtime.bound["metadata"] + LEAF
        answer = await loop.run_in_executor(None, lambda: get_status(url))
        done = len(steps)
        stop.set()
        await serving
        return answer, done

    try:
        status, done = asyncio.run(main())
    finally:
        runtime.close()
    assert status == 200
    assert steps and all(steps)  # not one step before the listeners were up
    assert done < 100  # answered while the warm-up still had a second of steps left
    assert "warming up after the start: the store is away" in caplog.text


def get_status(url: str) -> int:
    return httpx.get(url, headers={"Metadata": "true"}, timeout=10).status_code

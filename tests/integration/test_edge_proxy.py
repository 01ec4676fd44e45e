"""The signed edge-proxy contract end to end: docs/fleet.md's haproxy and nginx snippets,
run as written there (addresses aside), in front of a real openimds on loopback.

VMs call from their own loopback addresses (127.0.0.2, 127.0.0.3); the proxies connect
to openimds from 127.0.0.1, the one `proxy.sources` address.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openimds.core.signed_caller import proxy_signature
from tests.support.paths import DOCS
from tests.support.server import RunningServer, start_server

SECRET = "edge-proxy-secret-0123456789"
FLEET = """
proxy:
  sources: [127.0.0.1]
vms:
  - addresses: [10.0.0.11]
    identities: {systemAssigned: {}}
    instance: {compute: {name: vm-a}}
  - addresses: [10.0.0.12]
    identities: {systemAssigned: {}}
    instance: {compute: {name: vm-b}}
"""
NAME = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"
TOKEN = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
# The snippets' example addresses, and what they become here.
VM_ADDRESSES = {"10.0.0.11": "127.0.0.2", "10.0.0.12": "127.0.0.3"}
NO_VM = "127.0.0.4"


def snippet(lang: str) -> str:
    """The first ```lang block of docs/fleet.md."""
    found = re.search(rf"```{lang}\n(.*?)```", (DOCS / "fleet.md").read_text(), re.S)
    assert found, f"docs/fleet.md has no {lang} block"
    return found.group(1)


def localised(text: str, listen: str, backend: str) -> str:
    for example, here in VM_ADDRESSES.items():
        text = text.replace(example, here)
    assert "169.254.169.254:80" in text and "10.0.0.1:8080" in text
    return text.replace("169.254.169.254:80", listen).replace("10.0.0.1:8080", backend)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the proxy exited ({proc.returncode}):\n{log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"the proxy did not listen on {port}:\n{log.read_text()}")


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/install --system")
    return path


def haproxy(tmp: Path, listen: str, backend: str) -> tuple[list[str], dict[str, str]]:
    config = tmp / "haproxy.cfg"
    config.write_text(localised(snippet("haproxy"), listen, backend))
    key = base64.b64encode(SECRET.encode()).decode()
    check = subprocess.run(
        [tool("haproxy"), "-c", "-f", str(config)],
        env={"OPENIMDS_PROXY_KEY_B64": key},
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    return [tool("haproxy"), "-db", "-f", str(config)], {"OPENIMDS_PROXY_KEY_B64": key}


def nginx(tmp: Path, listen: str, backend: str) -> tuple[list[str], dict[str, str]]:
    (tmp / "logs").mkdir()
    text = localised(snippet("nginx"), listen, backend)
    module = "/usr/lib/nginx/modules/ngx_http_js_module.so"
    (tmp / "nginx.conf").write_text(text.replace("modules/ngx_http_js_module.so", module))
    (tmp / "imds_sign.js").write_text(snippet("js"))
    main = f"daemon off; pid {tmp}/nginx.pid; error_log {tmp}/logs/error.log;"
    cmd = [tool("nginx"), "-p", f"{tmp}/", "-c", f"{tmp}/nginx.conf", "-g", main]
    env = {"OPENIMDS_PROXY_SECRET": SECRET}
    check = subprocess.run([*cmd, "-t"], env=env, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    return cmd, env


PROXIES = {"haproxy": haproxy, "nginx": nginx}


@pytest.fixture(scope="module")
def openimds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("edge-openimds")
    config = tmp / "fleet.yaml"
    config.write_text(FLEET)
    running = start_server(tmp, config=str(config), env={"OPENIMDS_PROXY_SECRET": SECRET})
    yield running
    running.stop()


@pytest.fixture(params=sorted(PROXIES))
def proxy_url(
    request: pytest.FixtureRequest, openimds: RunningServer, tmp_path: Path
) -> Iterator[str]:
    """One proxy from docs/fleet.md in front of `openimds`; its base URL."""
    kind: str = request.param
    port = free_port()
    cmd, env = PROXIES[kind](tmp_path, f"127.0.0.1:{port}", openimds.metadata_url[7:])
    log = tmp_path / f"{kind}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get(url: str, source: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, headers={"Metadata": "true"}) as client:
        return client.get(url, headers=headers)


def signed(vm: str) -> dict[str, str]:
    now = int(time.time())
    return {
        "X-OpenIMDS-VM": vm,
        "X-OpenIMDS-Timestamp": str(now),
        "X-OpenIMDS-Signature": proxy_signature(SECRET.encode(), vm, now),
    }


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def test_each_vm_gets_its_own_answers_through_the_proxy(proxy_url: str) -> None:
    assert get(proxy_url + NAME, "127.0.0.2").text == "vm-a"
    assert get(proxy_url + NAME, "127.0.0.3").text == "vm-b"
    tokens = {}
    for source, vm in (("127.0.0.2", "vm-a"), ("127.0.0.3", "vm-b")):
        answer = get(proxy_url + TOKEN, source)
        assert answer.status_code == 200, answer.text
        tokens[vm] = claims(answer.json()["access_token"])
        assert tokens[vm]["xms_mirid"].endswith(f"/virtualMachines/{vm}")
    assert tokens["vm-a"]["oid"] != tokens["vm-b"]["oid"]
    assert get(proxy_url + NAME, NO_VM).status_code == 404  # the proxy knows no such VM


def test_headers_a_vm_sends_are_replaced_by_the_proxys(proxy_url: str) -> None:
    # Even a validly signed claim (copied from somewhere) for vm-b: the proxy speaks.
    assert get(proxy_url + NAME, "127.0.0.2", signed("vm-b")).text == "vm-a"


def test_bypassing_the_proxy_with_copied_headers_is_refused(openimds: RunningServer) -> None:
    direct = openimds.metadata_url + NAME
    refused = get(direct, "127.0.0.2", signed("vm-b"))
    assert refused.status_code == 403
    assert refused.json()["error"].startswith("Forbidden.")
    # From the proxy's own address, unsigned: refused too.
    assert get(direct, "127.0.0.1").status_code == 403
    metrics = openimds.admin("GET", "/metrics").text
    assert re.search(r'^openimds_proxy_refused_total\{reason="forged"\} [1-9]', metrics, re.M)
    assert re.search(r'^openimds_proxy_refused_total\{reason="unsigned"\} [1-9]', metrics, re.M)

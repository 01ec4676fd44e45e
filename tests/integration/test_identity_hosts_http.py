"""Every token source over real sockets, as its protocol reads on the wire: Arc's key-file
challenge in the real /var/opt/azcmagent/tokens, App Service's two api-versions, Azure ML,
Cloud Shell's POST, Service Fabric's HTTPS with a pinned certificate; secrets kept across
restarts, never logged, and only in the one admin answer made for them."""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.clients.identity_support import SERVER_ENV
from tests.support.identity import DEMO, SYSTEM, USER
from tests.support.server import RunningServer, start_server
from tests.support.sources import (
    ALL_SOURCES_CONFIG,
    ARC_FOLDER,
    created_folders,
    hosts_of,
    remove_empty,
    run_all_sources,
)

pytestmark = pytest.mark.root

RESOURCE = "https://vault.azure.net"
IMDS_QUERY = f"api-version=2020-06-01&resource={RESOURCE}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from run_all_sources(tmp_path_factory.mktemp("sources-http"))


@pytest.fixture(scope="module")
def hosts(server: RunningServer) -> dict[str, dict[str, str]]:
    return hosts_of(server)


def token_url(hosts: dict[str, dict[str, str]], name: str) -> str:
    return hosts[name]["url"] + hosts[name]["tokenPath"]


# -- Azure Arc -----------------------------------------------------------------------------


def arc_get(
    hosts: dict[str, dict[str, str]], query: str = IMDS_QUERY, **headers: str
) -> httpx.Response:
    return httpx.get(f"{token_url(hosts, 'arc')}?{query}", headers={"Metadata": "true", **headers})


def challenge(hosts: dict[str, dict[str, str]], query: str = IMDS_QUERY) -> Path:
    answer = arc_get(hosts, query)
    assert answer.status_code == 401
    scheme, _, realm = answer.headers["WWW-Authenticate"].partition(" realm=")
    assert scheme == "Basic"
    return Path(realm)


def test_arc_challenges_with_a_private_key_file_in_the_agent_folder(
    hosts: dict[str, dict[str, str]],
) -> None:
    key_file = challenge(hosts)
    assert key_file.parent == ARC_FOLDER and key_file.suffix == ".key"
    assert "=" not in str(key_file)  # clients split the header at "="
    mode = key_file.stat().st_mode
    assert stat.S_IMODE(mode) == 0o600 and key_file.stat().st_uid == 0
    secret = key_file.read_text()
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    assert "access_token" not in arc_get(hosts).text


def test_arc_secret_answers_once(hosts: dict[str, dict[str, str]]) -> None:
    key_file = challenge(hosts)
    secret = key_file.read_text()
    first = arc_get(hosts, Authorization=f"Basic {secret}")
    assert first.status_code == 200, first.text
    assert first.json()["client_id"] == SYSTEM["clientId"]
    assert not key_file.exists()  # answered: gone
    again = arc_get(hosts, Authorization=f"Basic {secret}")
    assert again.status_code == 401 and "access_token" not in again.text
    assert Path(again.headers["WWW-Authenticate"].split("=", 1)[1]) != key_file


@pytest.mark.parametrize(
    "authorization",
    ["Basic 0123456789abcdef", "Basic", "Bearer {secret}", "{secret}", "Basic {secret}x"],
)
def test_arc_refuses_a_wrong_secret(hosts: dict[str, dict[str, str]], authorization: str) -> None:
    secret = challenge(hosts).read_text()
    answer = arc_get(hosts, Authorization=authorization.format(secret=secret))
    assert answer.status_code == 401 and "access_token" not in answer.text


def arc_token(hosts: dict[str, dict[str, str]], query: str) -> httpx.Response:
    secret = challenge(hosts, query).read_text()
    return arc_get(hosts, query, Authorization=f"Basic {secret}")


def test_arc_selects_by_client_object_and_msi_res_id_and_echoes_it(
    hosts: dict[str, dict[str, str]],
) -> None:
    for name, value in (
        ("client_id", USER["clientId"]),
        ("object_id", USER["objectId"]),
        ("msi_res_id", USER["resourceId"]),
    ):
        body = arc_token(hosts, f"{IMDS_QUERY}&{name}={value}").json()
        assert body["client_id"] == USER["clientId"]
        assert body.get(name, body["client_id"]) == value
        assert int(body["expires_in"]) > 3600


def test_arc_ignores_mi_res_id_as_the_agent_does(hosts: dict[str, dict[str, str]]) -> None:
    body = arc_token(hosts, f"{IMDS_QUERY}&mi_res_id={USER['resourceId']}").json()
    assert body["client_id"] == SYSTEM["clientId"]
    assert "msi_res_id" not in body and "mi_res_id" not in body


def test_arc_unknown_identity_is_the_agents_404(hosts: dict[str, dict[str, str]]) -> None:
    answer = arc_token(hosts, f"{IMDS_QUERY}&client_id=00000000-1111-2222-3333-444444444444")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": "identity_not_found",
        "error_description": "Identity not found: error acquiring access token: "
        "requested identity was not found",
        "error_codes": [404],
    }


def test_arc_needs_the_metadata_header_before_any_key_file(
    hosts: dict[str, dict[str, str]],
) -> None:
    before = set(ARC_FOLDER.iterdir())
    answer = httpx.get(f"{token_url(hosts, 'arc')}?{IMDS_QUERY}")
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request_102"
    assert set(ARC_FOLDER.iterdir()) == before


def test_arc_serves_instance_metadata_to_any_local_caller(
    hosts: dict[str, dict[str, str]],
) -> None:
    answer = httpx.get(
        hosts["arc"]["url"] + "/metadata/instance?api-version=2021-02-01",
        headers={"Metadata": "true"},
    )
    assert answer.status_code == 200
    assert answer.json()["compute"]["name"] == "demo-vm"


def test_arc_key_files_are_removed_at_shutdown(tmp_path: Path) -> None:
    created = created_folders(ARC_FOLDER)
    config = tmp_path / "arc.yaml"
    config.write_text('hosts:\n  arc: {listen: "127.0.0.1:0"}\n')
    running = start_server(tmp_path, config=str(config), env=SERVER_ENV)
    try:
        pending = [challenge(hosts_of(running)) for _ in range(3)]
        assert all(path.exists() for path in pending)
    finally:
        running.stop()
        remove_empty(created)
    assert not any(path.exists() for path in pending)


# -- App Service ---------------------------------------------------------------------------


def app_get(hosts: dict[str, dict[str, str]], query: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{token_url(hosts, 'appservice')}?{query}", headers=headers)


def test_app_service_2019_body(hosts: dict[str, dict[str, str]]) -> None:
    secret = hosts["appservice"]["secret"]
    answer = app_get(
        hosts, f"api-version=2019-08-01&resource={RESOURCE}", **{"X-IDENTITY-HEADER": secret}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert list(body) == ["access_token", "expires_on", "resource", "token_type", "client_id"]
    assert isinstance(body["expires_on"], str) and body["expires_on"].isdigit()
    assert (body["resource"], body["client_id"]) == (RESOURCE, SYSTEM["clientId"])


def test_app_service_2019_selectors(hosts: dict[str, dict[str, str]]) -> None:
    secret = hosts["appservice"]["secret"]
    for name, value in (
        ("client_id", USER["clientId"]),
        ("principal_id", USER["objectId"]),
        ("object_id", USER["objectId"]),
        ("mi_res_id", USER["resourceId"]),
    ):
        query = f"api-version=2019-08-01&resource={RESOURCE}&{name}={value}"
        body = app_get(hosts, query, **{"X-IDENTITY-HEADER": secret}).json()
        assert body["client_id"] == USER["clientId"], name


def test_app_service_2017_body_has_a_date(hosts: dict[str, dict[str, str]]) -> None:
    secret = hosts["appservice"]["secret"]
    query = f"api-version=2017-09-01&resource={RESOURCE}&clientid={USER['clientId']}"
    body = app_get(hosts, query, secret=secret).json()
    assert list(body) == ["access_token", "expires_on", "resource", "token_type"]
    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d \+00:00", body["expires_on"])


@pytest.mark.parametrize(
    ("version", "headers"),
    [
        ("2019-08-01", {}),
        ("2019-08-01", {"X-IDENTITY-HEADER": "0123456789abcdef0123456789abcdef"}),
        ("2019-08-01", {"secret": "{secret}"}),  # the other version's header
        ("2017-09-01", {"X-IDENTITY-HEADER": "{secret}"}),
        ("2017-09-01", {}),
    ],
)
def test_app_service_refuses_a_missing_or_wrong_secret(
    hosts: dict[str, dict[str, str]], version: str, headers: dict[str, str]
) -> None:
    secret = hosts["appservice"]["secret"]
    sent = {k: v.format(secret=secret) for k, v in headers.items()}
    answer = app_get(hosts, f"api-version={version}&resource={RESOURCE}", **sent)
    assert answer.status_code == 401
    assert answer.json()["statusCode"] == 401 and "access_token" not in answer.text


def test_app_service_unknown_version_and_missing_resource(hosts: dict[str, dict[str, str]]) -> None:
    secret = {"X-IDENTITY-HEADER": hosts["appservice"]["secret"]}
    assert (
        app_get(hosts, f"api-version=2018-02-01&resource={RESOURCE}", **secret).status_code == 400
    )
    assert app_get(hosts, "api-version=2019-08-01", **secret).json()["statusCode"] == 400


# -- Azure ML ------------------------------------------------------------------------------


def test_azure_ml_expires_on_is_a_number(hosts: dict[str, dict[str, str]]) -> None:
    url = f"{token_url(hosts, 'azureml')}?api-version=2017-09-01&resource={RESOURCE}"
    answer = httpx.get(
        f"{url}&clientid={USER['clientId']}", headers={"secret": hosts["azureml"]["secret"]}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert isinstance(body["expires_on"], int) and body["client_id"] == USER["clientId"]
    wrong = httpx.get(url, headers={"secret": hosts["appservice"]["secret"]})  # another's
    assert wrong.status_code == 401 and "access_token" not in wrong.text
    assert httpx.get(url).status_code == 401


# -- Cloud Shell ---------------------------------------------------------------------------


def test_cloud_shell_posts_a_form(hosts: dict[str, dict[str, str]]) -> None:
    url = token_url(hosts, "cloudshell")
    answer = httpx.post(url, data={"resource": RESOURCE}, headers={"Metadata": "true"})
    assert answer.status_code == 200
    assert int(answer.json()["expires_in"]) > 3600 and answer.json()["resource"] == RESOURCE
    get = httpx.get(url, headers={"Metadata": "true"})
    assert (get.status_code, get.headers["Allow"]) == (405, "POST")
    assert get.json()["error"]["code"] == "MethodNotAllowed"
    bare = httpx.post(url, data={"resource": RESOURCE})
    assert bare.status_code == 400 and "access_token" not in bare.text
    empty = httpx.post(url, data={}, headers={"Metadata": "true"})
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "BadRequest"


# -- Service Fabric ------------------------------------------------------------------------


def served_certificate(url: str) -> bytes:
    parts = urlsplit(url)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((parts.hostname, parts.port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_service_fabric_is_https_with_the_pinned_certificate(
    hosts: dict[str, dict[str, str]],
) -> None:
    sf = hosts["servicefabric"]
    assert sf["url"].startswith("https://")
    der = served_certificate(sf["url"])
    assert hashlib.sha1(der).hexdigest().upper() == sf["thumbprint"]
    url = f"{token_url(hosts, 'servicefabric')}?api-version=2019-07-01-preview&resource={RESOURCE}"
    answer = httpx.get(url, headers={"Secret": sf["secret"]}, verify=False)
    assert answer.status_code == 200
    body = answer.json()
    assert list(body) == ["token_type", "access_token", "expires_on", "resource"]
    assert isinstance(body["expires_on"], int)
    refused = httpx.get(url, verify=False)
    assert refused.status_code == 401 and "access_token" not in refused.text
    assert refused.json() == {
        "error": {"code": "SecretHeaderNotFound", "message": "Secret is not found in the request"}
    }


def test_service_fabric_refuses_plain_http(hosts: dict[str, dict[str, str]]) -> None:
    plain = hosts["servicefabric"]["url"].replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(plain + "/metadata/identity/oauth2/token", timeout=5)


# -- across the server ---------------------------------------------------------------------


def test_secrets_and_certificate_survive_a_restart(tmp_path: Path) -> None:
    created = created_folders(ARC_FOLDER)
    config = tmp_path / "sources.yaml"
    config.write_text(ALL_SOURCES_CONFIG)
    seen = []
    try:
        for _ in range(2):
            running = start_server(tmp_path, config=str(config), env=SERVER_ENV)
            try:
                found = hosts_of(running)
            finally:
                running.stop()
            seen.append({n: (h.get("secret"), h.get("thumbprint")) for n, h in found.items()})
    finally:
        remove_empty(created)
    assert seen[0] == seen[1]
    assert seen[0]["appservice"][0] != seen[0]["azureml"][0]


def test_only_the_hosts_route_shows_secrets_and_the_log_none(tmp_path: Path) -> None:
    created = created_folders(ARC_FOLDER)
    config = tmp_path / "sources.yaml"
    config.write_text(ALL_SOURCES_CONFIG)
    running = start_server(
        tmp_path, config=str(config), env=SERVER_ENV, args=["--log-level", "debug"]
    )
    try:
        hosts = hosts_of(running)
        secrets = [h["secret"] for h in hosts.values() if "secret" in h]
        assert len(secrets) == 3
        app = hosts["appservice"]
        httpx.get(f"{app['url']}{app['tokenPath']}?api-version=2019-08-01&resource=x",
                  headers={"X-IDENTITY-HEADER": app["secret"]})  # fmt: skip
        arc_secret = challenge(hosts).read_text()
        arc_get(hosts, Authorization=f"Basic {arc_secret}")
        others = [
            running.admin("GET", path).text
            for path in ("/vms", "/identity/vms", "/identity/keys", "/healthz", "/openapi.json")
        ]
        shown = running.cli("config", "show").stdout
    finally:
        running.stop()
        remove_empty(created)
    log = running.output
    for secret in [*secrets, arc_secret]:
        assert secret not in log
        assert not any(secret in text for text in others)
        assert secret not in shown


def test_env_prints_each_shell(server: RunningServer, hosts: dict[str, dict[str, str]]) -> None:
    app = hosts["appservice"]
    bash = server.cli("env", "--host", "appservice").stdout
    shown = subprocess.run(
        ["bash", "-c", f'export IMDS_ENDPOINT=x MSI_SECRET=y\n{bash}\nenv'],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"IDENTITY_ENDPOINT={app['url']}/msi/token\n" in shown
    assert f"IDENTITY_HEADER={app['secret']}\n" in shown
    assert "IMDS_ENDPOINT=" not in shown and "MSI_SECRET=" not in shown
    fish = server.cli("env", "--host", "arc", "--shell", "fish").stdout
    assert f"set -gx IMDS_ENDPOINT '{hosts['arc']['url']}'" in fish and "set -e MSI_SECRET" in fish
    pwsh = server.cli("env", "--host", "servicefabric", "--shell", "pwsh").stdout
    thumbprint = hosts["servicefabric"]["thumbprint"]
    assert f"$env:IDENTITY_SERVER_THUMBPRINT = '{thumbprint}'" in pwsh
    vm = server.cli("env").stdout
    assert vm.startswith(f"export AZURE_POD_IDENTITY_AUTHORITY_HOST='{hosts['vm']['url']}'")
    token_url = f"{hosts['vm']['url']}/metadata/identity/oauth2/token"
    assert f"export MSAL_MANAGED_IDENTITY_ENDPOINT='{token_url}'\n" in vm
    assert DEMO["tenantId"] not in vm


def test_env_for_a_source_the_server_does_not_run(tmp_path: Path) -> None:
    running = start_server(tmp_path, env=SERVER_ENV)
    try:
        done = running.cli("env", "--host", "azureml")
    finally:
        running.stop()
    assert done.returncode == 1
    assert "does not serve azureml" in done.stderr and "--host azureml" in done.stderr


def test_getplatformmetadata_for_msal_net_imds_v2(live: RunningServer) -> None:
    answer = live.get("/metadata/identity/getplatformmetadata?cred-api-version=2.0")
    assert answer.status_code == 200
    assert "IMDS" in answer.headers["Server"]  # MSAL.NET requires it
    body = answer.json()
    assert set(body) == {"cuId", "clientId", "tenantId", "attestationEndpoint"}
    assert (body["clientId"], body["tenantId"]) == (SYSTEM["clientId"], DEMO["tenantId"])
    assert set(body["cuId"]) == {"vmId", "vmssId"} and body["cuId"]["vmId"]
    issue = live.get("/metadata/identity/issuecredential?cred-api-version=2.0")
    assert issue.status_code in (400, 404)  # the certificate-issuing half is not served


def test_the_default_connection_cap_warns_of_nothing(server: RunningServer) -> None:
    # Five sources are six listeners sharing one open-file limit: the default cap does not
    # fit them all under a common hard limit (20000 here), which was no one's choice.
    lines = [line for line in server.output.splitlines() if "max_connections" in line]
    assert not [line for line in lines if '"level":"warning"' in line.replace(" ", "")], lines
    assert "98304" not in server.output

"""Drive WALinuxAgent's IMDS client (Debian waagent 2.7) against openimds.

Run by tests/clients/test_waagent.py with Debian's /usr/bin/python3:
    waagent_probe.py IMDS_ENDPOINT WIRESERVER_ENDPOINT
Both endpoints are host:port on loopback. Prints one JSON line: what the agent fetched
and what it made of it. Only the addresses change; every call is the agent's own code.
"""

import http.client
import json
import sys

import azurelinuxagent.common.protocol.util as protocol_util
from azurelinuxagent.common.protocol import imds
from azurelinuxagent.common.utils import restutil
from azurelinuxagent.common.version import AGENT_VERSION
from isolation import require_isolation

headers_seen = []


def redirect(imds_endpoint, wireserver_endpoint):
    """2.7 has no override: the IMDS address is the module constant `IMDS_ENDPOINT`
    (read at call time), and on a connection error it retries at the wireserver address
    given to the client (callers pass KNOWN_WIRESERVER_IP or the DHCP-learned one), so
    every copy of that constant is pointed at a closed loopback port too."""
    if imds.IMDS_ENDPOINT != "169.254.169.254":
        raise SystemExit(f"unexpected IMDS_ENDPOINT {imds.IMDS_ENDPOINT!r}: not WALinuxAgent 2.7?")
    imds.IMDS_ENDPOINT = imds_endpoint
    restutil.KNOWN_WIRESERVER_IP = wireserver_endpoint
    protocol_util.KNOWN_WIRESERVER_IP = wireserver_endpoint


def observe_headers():
    """Record the header lines the agent puts on the wire (observation only)."""
    original = http.client.HTTPConnection.putheader

    def recording_putheader(self, header, *values):
        headers_seen.append([header, *[str(v) for v in values]])
        return original(self, header, *values)

    http.client.HTTPConnection.putheader = recording_putheader


def main():
    imds_endpoint, wireserver_endpoint = sys.argv[1:3]
    isolation = require_isolation()
    redirect(imds_endpoint, wireserver_endpoint)
    observe_headers()
    client = imds.get_imds_client(wireserver_endpoint)
    compute = client.get_compute()
    raw = client.get_metadata("instance/compute", is_health=False)
    healthy, error = client.validate()
    report = {
        "agent_version": str(AGENT_VERSION),
        "module": imds.__file__,
        "isolation": isolation,
        "headers": headers_seen,
        "compute": {k: v for k, v in vars(compute).items() if not k.startswith("_")},
        "compute_keys": sorted(json.loads(raw.response.decode("utf-8"))),
        "image_info": compute.image_info,
        "image_origin": compute.image_origin,
        "healthy": healthy,
        "error": error,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()

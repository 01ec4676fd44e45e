"""Drive an Azure guest agent's own WireServer client against openimds.

Run by tests/clients/test_guest_agents.py with Debian's /usr/bin/python3, inside a network
namespace whose only interface is `lo`, carrying 168.63.129.16/32 (the WireServer's
address, here only inside the namespace), where openimds serves the WireServer (:80)
and the HostGAPlugin (:32526):
    guest_probe.py cloud-init WORKDIR
    guest_probe.py waagent WORKDIR
Prints one JSON line: what the agent got. Every call is the agent's own code; what the
probe adds only observes (the requests it makes, what it parsed).
"""

import http.client
import json
import os
import socket
import sys

WIRESERVER = "168.63.129.16"
requests_seen = []


def require_isolation():
    """Exit unless `lo` is the only interface and 168.63.129.16 is an address of it."""
    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        raise SystemExit(f"not in a loopback-only namespace: {interfaces}")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind((WIRESERVER, 0))  # only an address of this namespace's lo binds
    finally:
        probe.close()
    return {"interfaces": interfaces, "wireserver_local": True}


def observe_requests():
    original = http.client.HTTPConnection.putrequest

    def recording(self, method, url, *args, **kwargs):
        requests_seen.append([method, f"{self.host}:{self.port}", url])
        return original(self, method, url, *args, **kwargs)

    http.client.HTTPConnection.putrequest = recording


def cloud_init(workdir):
    from cloudinit import version
    from cloudinit.sources.helpers import azure

    parsed = {}
    original = azure.OpenSSLManager.parse_certificates

    def observed(self, certificates_xml):
        keys = original(self, certificates_xml)
        parsed.update(keys)
        return keys

    azure.OpenSSLManager.parse_certificates = observed
    # First with a fingerprint nobody has (what the agent parsed is observed), then with
    # the one it found: the SSH key comes back from the certificates.
    none = azure.get_metadata_from_fabric(WIRESERVER, pubkey_info=[{"fingerprint": "0" * 40}])
    fingerprints = sorted(parsed)
    keys = azure.get_metadata_from_fabric(
        WIRESERVER, pubkey_info=[{"fingerprint": f} for f in fingerprints]
    )
    azure.report_failure_to_fabric(WIRESERVER, description="the probe reports a failure")
    azure.get_metadata_from_fabric(WIRESERVER)  # and Ready again, without certificates
    return {
        "version": version.version_string(),
        "module": azure.__file__,
        "unmatched": none,
        "fingerprints": fingerprints,
        "keys": keys,
    }


def waagent(workdir):
    from azurelinuxagent.common import conf
    from azurelinuxagent.common.protocol.restapi import ProvisionStatus, VMStatus
    from azurelinuxagent.common.protocol.wire import WireProtocol
    from azurelinuxagent.common.version import AGENT_VERSION

    os.makedirs(workdir, exist_ok=True)
    conf.__conf__.values["Lib.Dir"] = workdir
    protocol = WireProtocol(WIRESERVER)
    protocol.detect()
    goal_state = protocol.client.get_goal_state()
    certs = protocol.get_certs()
    vminfo = protocol.get_vminfo()
    protocol.report_provision_status(
        ProvisionStatus(status="NotReady", subStatus="Provisioning", description="Starting")
    )
    protocol.report_provision_status(ProvisionStatus(status="Ready"))
    protocol.report_vm_status(VMStatus(status="Ready", message="Guest Agent is running"))
    host = protocol.client.get_host_plugin()
    ext = protocol.get_extensions_goal_state()
    files = sorted(os.listdir(workdir))
    return {
        "version": str(AGENT_VERSION),
        "module": sys.modules[WireProtocol.__module__].__file__,
        "incarnation": goal_state.incarnation,
        "container_id": goal_state.container_id,
        "role_instance_id": goal_state.role_instance_id,
        "thumbprints": [c.thumbprint for c in certs.certificates],
        "crt_files": [f for f in files if f.endswith(".crt") and f != "TransportCert.pem"],
        "vm_name": vminfo.vmName,
        "role_name": vminfo.roleName,
        "status_upload_blob": ext.status_upload_blob,
        "host_plugin_initialized": bool(host.is_initialized),
        "host_plugin_available": bool(host.is_available),
    }


def main():
    agent, workdir = sys.argv[1:3]
    isolation = require_isolation()
    observe_requests()
    report = cloud_init(workdir) if agent == "cloud-init" else waagent(workdir)
    report["isolation"] = isolation
    report["requests"] = requests_seen
    print(json.dumps(report))


if __name__ == "__main__":
    main()

"""Read provisioning media's ovf-env.xml with cloud-init's and waagent's own parsers.

Run by tests/clients/test_provisioning_media.py with Debian's /usr/bin/python3:
    ovf_probe.py DIR [PASSWORD]
    ovf_probe.py --devices
DIR holds ovf-env.xml as read from the ISO. cloud-init's `load_azure_ds_dir` is what its
Azure data source calls on the mounted media; waagent's `OvfEnv` is what its provisioning
handler parses the copied file with. Prints one JSON line. PASSWORD, when given, is
checked against the hash cloud-init made of the document's UserPassword. --devices lists
the places cloud-init's Azure data source looks for media (`list_possible_azure_ds`:
the seed, /dev/sr0, then every iso9660 or udf device blkid finds).
"""

import crypt
import json
import os
import sys

from azurelinuxagent.common.protocol.ovfenv import OvfEnv
from cloudinit.sources import DataSourceAzure
from isolation import require_isolation


def cloud_init(directory, password):
    md, ud, cfg, files = DataSourceAzure.load_azure_ds_dir(directory)
    user = dict(cfg.get("system_info", {}).get("default_user", {}))
    hashed = user.pop("hashed_passwd", None)
    return {
        "metadata": md,
        "userdata": ud.decode("utf-8") if isinstance(ud, bytes) else ud,
        "pubkeys": cfg.get("_pubkeys", []),
        "ssh_pwauth": cfg.get("ssh_pwauth"),
        "default_user": user,
        "password_matches": None if hashed is None else crypt.crypt(password, hashed) == hashed,
        "preprovisioned": cfg.get("PreprovisionedVm"),
        "files": sorted(files),
    }


def waagent(directory):
    with open(os.path.join(directory, "ovf-env.xml"), encoding="utf-8") as handle:
        ovf = OvfEnv(handle.read())
    return {
        "hostname": ovf.hostname,
        "username": ovf.username,
        "user_password": ovf.user_password,
        "customdata": ovf.customdata,
        "disable_ssh_password_auth": ovf.disable_ssh_password_auth,
        "ssh_pubkeys": [list(key) for key in ovf.ssh_pubkeys],
        "provision_guest_agent": ovf.provision_guest_agent,
    }


def main():
    isolation = require_isolation()
    if sys.argv[1] == "--devices":
        found = DataSourceAzure.list_possible_azure_ds("/nonexistent-seed", None)
        print(json.dumps({"isolation": isolation, "devices": list(found)}))
        return
    directory = sys.argv[1]
    password = sys.argv[2] if len(sys.argv) > 2 else ""
    report = {
        "isolation": isolation,
        "cloud_init": cloud_init(directory, password),
        "waagent": waagent(directory),
    }
    print(json.dumps(report))


main()

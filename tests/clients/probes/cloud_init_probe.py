"""Drive cloud-init's Azure data source (Debian cloud-init 22.x) against openimds.

Run by tests/clients/test_cloud_init.py with Debian's /usr/bin/python3:
    cloud_init_probe.py METADATA_URL WORKDIR [WANTED_API_VERSION] [retries=N]
WANTED_API_VERSION replaces the version cloud-init asks for first (2021-08-01), to see
its fallback to 2019-06-01 when the server refuses a version. retries=N lets cloud-init
retry each fetch as it does at boot (its IMDS_RETRY_CODES, 1 s apart; default 0).
Prints one JSON line: what cloud-init fetched and what it made of it. Only the IMDS
address is changed; every call below is cloud-init's own code path.
"""

import base64
import json
import sys

from cloudinit import helpers, url_helper, version
from cloudinit.sources import DataSourceAzure
from isolation import require_isolation

AZURE_IMDS = "http://169.254.169.254/metadata"
requests_seen = []


def redirect(metadata_url):
    """Point cloud-init at the test server. 22.x has no override: `IMDS_URL` is baked
    into the `MetadataType` values at import, and functions hold the members as default
    arguments, so the members' values are rewritten in place."""
    base = metadata_url + "/metadata"
    if DataSourceAzure.IMDS_URL != AZURE_IMDS:
        raise SystemExit(f"unexpected IMDS_URL {DataSourceAzure.IMDS_URL!r}: not cloud-init 22.x?")
    DataSourceAzure.IMDS_URL = base
    for member in DataSourceAzure.MetadataType:
        member._value_ = base + member._value_[len(AZURE_IMDS) :]


def observe_requests():
    """Record what the data source asks for (URL, headers, status), then let cloud-init's
    own readurl do the request: observation only."""

    def recording_readurl(url, *args, **kwargs):
        entry = {"url": url, "headers": dict(kwargs.get("headers") or {})}
        requests_seen.append(entry)
        try:
            response = url_helper.readurl(url, *args, **kwargs)
        except url_helper.UrlError as error:
            entry["status"] = error.code
            raise
        entry["status"] = response.code
        return response

    DataSourceAzure.readurl = recording_readurl


def main():
    metadata_url, workdir = sys.argv[1:3]
    retries = 0
    isolation = require_isolation()
    redirect(metadata_url)
    for arg in sys.argv[3:]:
        if arg.startswith("retries="):
            retries = int(arg.partition("=")[2])
        else:
            DataSourceAzure.IMDS_VER_WANT = arg  # read at call time
    observe_requests()
    paths = helpers.Paths({"cloud_dir": workdir + "/cloud", "run_dir": workdir + "/run"})
    ds = DataSourceAzure.DataSourceAzure(sys_cfg={}, distro=None, paths=paths)

    # The boot crawl (crawl_metadata calls exactly this) and the primary-NIC check's
    # network sub-tree fetch (_check_if_nic_is_primary).
    imds = ds.get_imds_data_with_api_fallback(retries=retries)
    network = ds.get_imds_data_with_api_fallback(
        retries=retries, md_type=DataSourceAzure.MetadataType.NETWORK
    )

    ds._metadata_imds = imds
    ds.metadata = {"imds": imds}
    userdata = DataSourceAzure._userdata_from_imds(imds)
    report = {
        "cloud_init_version": version.version_string(),
        "module": DataSourceAzure.__file__,
        "isolation": isolation,
        "requests": requests_seen,
        "imds": imds,
        "network_subtree": network,
        # What crawl_metadata takes from the document.
        "username": DataSourceAzure._username_from_imds(imds),
        "hostname": DataSourceAzure._hostname_from_imds(imds),
        "disable_password": DataSourceAzure._disable_password_from_imds(imds),
        "ssh_keys": ds._get_public_keys_from_imds(imds),
        "userdata": base64.b64decode("".join(userdata.split())).decode() if userdata else None,
        "pps_type": ds._determine_pps_type({}, imds).value,
        "network_valid": ds.validate_imds_network_metadata(imds),
        "region": ds.region,
        "availability_zone": ds.availability_zone,
        # The netplan v2 config cloud-init renders from the IMDS network data.
        "network_config": ds.network_config,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()

"""GET /metadata/identity/getplatformmetadata: the first call of MSAL.NET's "IMDS v2"
managed identity (spec managed-identity-sources 2.8, ImdsV2ManagedIdentitySource.cs).

`?cred-api-version=2.0[&client_id|object_id|msi_res_id]` with `Metadata: true` ->
`{"cuId": {"vmId", "vmssId"}, "clientId", "tenantId", "attestationEndpoint"}`. The client
also wants a `Server` header containing "IMDS", which every answer of the listener has.

Only this half is served: the certificate-issuing `issuecredential` call and the mTLS
token request that follows it are not (docs/identity.md), so MSAL.NET falls back to the
VM endpoint's token path. `vmssId` is empty (the VM file has no scale-set id) and so is
`attestationEndpoint` (openimds attests nothing for KeyGuard keys).
"""

from __future__ import annotations

from openimds.core.formats import to_json
from openimds.core.http import Request, Response
from openimds.core.identity.identity_api import (
    IdentityBase,
    MalformedRequest,
    select,
)
from openimds.core.vm import VmSnapshot

CRED_API_VERSIONS = frozenset({"2.0"})


class PlatformMetadataEndpoint(IdentityBase):
    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        if request.param("cred-api-version") not in CRED_API_VERSIONS:
            raise MalformedRequest()
        identities = self.directory.identities(vm)
        identity = select(identities, request)
        vm_id = vm.compute.get("vmId")
        body = {
            "cuId": {"vmId": vm_id if isinstance(vm_id, str) else "", "vmssId": ""},
            "clientId": identity.client_id,
            "tenantId": identities.tenant_id if identities is not None else "",
            "attestationEndpoint": "",
        }
        # A pure function of (request, VM revision): the listener may keep the bytes.
        return Response(200, to_json(body), cacheable=True)

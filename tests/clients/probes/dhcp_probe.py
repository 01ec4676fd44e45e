"""Ask for a DHCP lease the way waagent finds the WireServer (Debian waagent 2.7).

Run by tests/clients/test_launch_kit_dhcp.py with Debian's /usr/bin/python3, inside the
guest's network namespace:
    dhcp_probe.py MAC [ASKS]
ASKS (e.g. 1,3,6,121) adds a parameter request list to the request, as dhclient and
systemd-networkd send one (waagent's has none: a server then sends every option).
waagent's own request (`build_dhcp_request`), exchange (`socket_send`: broadcast from
port 68), check (`validate_dhcp_resp`) and parse (`parse_dhcp_resp`: options 245, 3,
249). Prints one JSON line with those, and every option of the answer as hex.
"""

import array
import json
import sys

from azurelinuxagent.common import dhcp


def options(response):
    found, i = {}, 0xF0
    while i < len(response) and response[i] != 255:
        code, length = response[i], response[i + 1]
        found[str(code)] = bytes(response[i + 2 : i + 2 + length]).hex()
        i += length + 2
    return found


def main():
    mac = bytearray.fromhex(sys.argv[1].replace(":", ""))
    request = dhcp.build_dhcp_request(mac, True)
    if len(sys.argv) > 2:
        asks = [int(code) for code in sys.argv[2].split(",")]
        end = 0xEC + 7  # after the cookie and the message type, where 255 ends it
        request = request[:end] + array.array("B", [55, len(asks), *asks, 255])
    response = dhcp.socket_send(request)
    dhcp.validate_dhcp_resp(request, response)
    endpoint, gateway, routes = dhcp.parse_dhcp_resp(response)
    print(
        json.dumps(
            {
                "endpoint": endpoint,
                "gateway": gateway,
                "routes": [list(route) for route in routes or []],
                "yiaddr": ".".join(str(b) for b in response[16:20]),
                "options": options(response),
            }
        )
    )


main()

"""Shared by the probes: refuse to run a client that could reach beyond loopback."""

import socket

AZURE_WIRESERVER = "168.63.129.16"


def require_isolation():
    """Exit unless this network namespace reaches nothing but loopback: `lo` is its only
    interface and Azure's wireserver has no route (a UDP connect sends no packet)."""
    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        raise SystemExit(f"not in a loopback-only namespace: {interfaces}")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect((AZURE_WIRESERVER, 80))
    except OSError as error:
        return {"interfaces": interfaces, "wireserver": str(error)}
    finally:
        probe.close()
    raise SystemExit("Azure's wireserver address is routable here")

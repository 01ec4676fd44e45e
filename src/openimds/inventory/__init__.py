"""What every server knows about its VMs: the live inventory (live.py), kept in the state
store (stored.py), and the edge proxy's callers (proxy.py)."""

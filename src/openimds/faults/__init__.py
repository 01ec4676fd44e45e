"""Fault injection on the metadata listener (docs/faults.md)."""

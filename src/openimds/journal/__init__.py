"""The request journal's admin API and `openimds requests` (the journal itself is the
metadata listener's: web/metadata/request_ring.py)."""

"""Managed identities, the shell side: generated ids kept in the store (`directory.py`),
token and info endpoints plugged in (`feature.py`), the issuer side and key management on
the admin listener (`admin.py`), `openimds keys` (`cli.py`).

The token rules live in `openimds.core.identity` (`identity_api`, `tokens`); keys and
JWTs in `openimds.crypto`.
"""

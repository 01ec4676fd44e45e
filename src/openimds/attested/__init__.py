"""Attested data, the shell side: the CA prepared and the endpoint plugged in
(`feature.py`), the CA certificates on the admin listener (`admin.py`), `openimds ca` and
`openimds attested` (`cli.py`).

The document rules live in `openimds.core.attested_api`; PKCS#7 and the CA in
`openimds.crypto`.
"""

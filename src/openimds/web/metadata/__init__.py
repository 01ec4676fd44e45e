"""The metadata listener: connection protocol (`protocol.py`), what connections share
and how a request is answered (`state.py`), answers on the wire (`wire.py`) and request
hooks (`hooks.py`)."""

"""The metadata listener: connection protocol (`protocol.py`), what connections share
(`state.py`), answers on the wire (`wire.py`) and request hooks (`hooks.py`)."""

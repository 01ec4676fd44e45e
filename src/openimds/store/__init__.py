"""State that must survive a restart: admin token, keys, events. One interface, many backends."""

from openimds.store.base import Store, StoreError, open_store

__all__ = ["Store", "StoreError", "open_store"]

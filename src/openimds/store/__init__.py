"""State that must survive a restart: admin token, keys, events. One interface, many backends."""

from openimds.store.base import Delete, Put, Store, StoreError, open_store

__all__ = ["Delete", "Put", "Store", "StoreError", "open_store"]

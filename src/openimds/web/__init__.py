"""HTTP adapters: the lean metadata listener and the admin application."""

"""The operator console: the fleet in a browser, on the admin listener."""

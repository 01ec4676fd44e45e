"""The guest plane's pure half: the WireServer's and HostGAPlugin's documents, the
reports guests send, and the endpoints (docs/guests.md)."""

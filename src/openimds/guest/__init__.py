"""The guest plane: what an Azure guest needs of its host besides IMDS (docs/guests.md)."""

"""The guest plane: the WireServer and the HostGAPlugin an Azure guest's agents talk to
besides IMDS, and each VM's provisioning state (docs/guests.md)."""

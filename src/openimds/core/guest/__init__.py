"""Pure parts of the guest plane: what an Azure guest reads from its host besides IMDS."""

"""Fleet mode: the VM inventory, who is calling, and the inventory's admin routes."""

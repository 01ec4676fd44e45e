"""Fleet mode, as a feature: the inventory's admin routes and CLI (`vm`, `capture`), capturing
a real VM, the catalog a console searches, and previews of what a VM is served."""

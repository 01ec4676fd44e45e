"""Managed identity: the token endpoints of every host (VM, Arc, App Service, Cloud Shell,
Service Fabric) and what they share."""

"""openimds: an open, faithful and fast implementation of the Azure Instance Metadata Service."""

__version__ = "0.1.0"

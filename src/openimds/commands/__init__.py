"""CLI command groups of the features, each in its own module, added to `openimds` in cli.py."""

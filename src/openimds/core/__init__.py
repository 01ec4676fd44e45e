"""The pure core: request in, response out.

Nothing in this package touches sockets, files, databases, the environment, the clock or
randomness; tests/unit/core/test_purity.py reads the imports to keep it that way.
"""

"""Helpers for plugin authors: fixtures (the ``pytest11`` plugin) and the contract suite."""

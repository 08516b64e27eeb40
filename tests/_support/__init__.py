"""Helpers shared by the tests (importable as ``_support``: tests/ is on sys.path)."""

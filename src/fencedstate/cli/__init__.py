"""The ``fencedstate`` console script."""

from .main import main

__all__ = ["main"]

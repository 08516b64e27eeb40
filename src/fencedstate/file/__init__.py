"""The plain-files backend: ``FileStore`` over one append-only log per key."""

from .filestore import FileStore

__all__ = ["FileStore"]

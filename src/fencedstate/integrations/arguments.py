"""The arguments every adapter takes: a store, a key prefix, an owner name."""

from __future__ import annotations

import os
import socket
import uuid
from typing import ClassVar

from ..core.keys import validate_key
from ..errors import InvalidArgumentError
from ..locations import open_store
from ..store import Store


class InvalidStoreError(InvalidArgumentError, TypeError):
    """The ``store`` argument is neither a fencedstate ``Store`` nor a path or URL."""

    advice: ClassVar[str] = (
        "Pass a fencedstate Store (fs.open_store(...)) or a directory path / store URL."
    )


def resolve_store(store: object, *, what: str = "store") -> Store:
    """``store`` itself, or ``open_store(store)`` for a path or URL; ``InvalidStoreError`` else."""
    if isinstance(store, Store):
        return store
    if isinstance(store, (str, os.PathLike)) and os.fspath(store):
        return open_store(store)
    raise InvalidStoreError(
        f"{what} must be a fencedstate Store or a path/URL for fs.open_store, got {store!r}"
    )


def store_location(store: Store) -> str:
    """The path or URL ``open_store`` reopens ``store`` from (for a component's saved config).

    A PostgreSQL URL is returned as given, credentials included: keep passwords in
    ``PGPASSWORD`` / ``.pgpass`` rather than in the URL when configs are written out. An etcd or
    Redis store keeps no password where it can be read back: its URL comes without one.
    """
    for attr in ("_location", "url", "path"):  # a PostgreSQL store's url hides its password
        value = getattr(store, attr, None)
        if isinstance(value, str) and value:
            return value
    raise InvalidStoreError(f"cannot tell where {store!r} lives (no path or URL to reopen it)")


def resolve_prefix(prefix: object, *, what: str = "prefix") -> str:
    """A key prefix ending in ``/`` whose body is a valid key; ``InvalidArgumentError`` else."""
    if not isinstance(prefix, str) or not prefix.endswith("/") or prefix == "/":
        raise InvalidArgumentError(f"{what} must be a str ending in '/', got {prefix!r}")
    validate_key(prefix[:-1])
    return prefix


def default_owner(kind: str) -> str:
    """A claim owner name unique to this object: ``{kind}@{host}:{pid}:{8 hex digits}``.

    Unique per call, so two objects (or processes) never share an owner by default: a second
    object's claim attempt is refused (``ClaimHeldError``) instead of taken for the first's.
    """
    return f"{kind}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

"""Where a store lives: a directory path, ``file://``, or a backend URL -> the right ``Store``."""

from __future__ import annotations

import importlib
import os
import re
from typing import Any, cast

from .errors import InvalidArgumentError
from .file import FileStore
from .store import Store

__all__ = ["is_url", "open_store", "supported_locations"]

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.S)
_BACKENDS: dict[str, tuple[str, str, str]] = {
    # scheme: (module, class, extra to install)
    "postgresql": (".postgres", "PostgresStore", "postgres"),
    "postgres": (".postgres", "PostgresStore", "postgres"),
    "etcd": (".etcd", "EtcdStore", "etcd"),
    "redis": (".redis", "RedisStore", "redis"),
    "rediss": (".redis", "RedisStore", "redis"),
}


def open_store(target: str | os.PathLike[str], **options: Any) -> Store:
    """Open (creating if needed) a store.

    A directory path (or a ``file://`` URL) gives a ``FileStore`` (one host, many processes);
    ``postgresql://`` gives the PostgreSQL backend, ``etcd://host:port,...`` the etcd backend and
    ``redis://host:port/db`` (or ``rediss://``) the Redis backend, with the same API and
    semantics. Any other ``scheme://`` is an ``InvalidArgumentError``: it is never taken for a
    local directory name.
    """
    text = os.fspath(target)
    match = _URL.match(text)
    if match is None:
        return FileStore(text, **options)
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "file":
        host, slash, path = rest.partition("/")
        if host not in ("", "localhost") or not slash:
            raise InvalidArgumentError(
                f"file URL {_redact(text)!r} must name an absolute local path (file:///dir)"
            )
        return FileStore("/" + path, **options)
    backend = _BACKENDS.get(scheme)
    if backend is None:
        raise InvalidArgumentError(
            f"unsupported store URL {_redact(text)!r}: scheme {scheme + '://'!r} is not a "
            f"fencedstate backend; supported: {supported_locations()}"
        )
    module, cls, extra = backend
    try:
        backend_module = importlib.import_module(module, __package__)
    except ImportError as exc:
        raise InvalidArgumentError(
            f"store URL {_redact(text)!r} needs the {extra!r} extra: "
            f"pip install 'fencedstate[{extra}]' ({exc})"
        ) from None
    return cast(Store, getattr(backend_module, cls)(text, **options))


def is_url(text: str) -> bool:
    """True if ``text`` starts with ``scheme://`` (and so is never a directory name)."""
    return _URL.match(text) is not None


def supported_locations() -> str:
    """A one-line list of the locations ``open_store`` accepts (for error messages)."""
    urls = sorted({f"{s}:// (extra {e!r})" for s, (_, _, e) in _BACKENDS.items()})
    return "a directory path, file:///dir, " + ", ".join(urls)


def _redact(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)

"""Where a store lives: a directory path, ``file://``, or a backend URL -> the right ``Store``."""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import re
from typing import Any, Literal, cast
from urllib.parse import unquote, urlsplit

from .core.clock import Clock
from .errors import InvalidArgumentError
from .file import FileStore
from .file.layout import MARKER
from .store import Store

__all__ = ["is_url", "open_store", "options_of", "supported_locations"]

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.S)
_BACKENDS: dict[str, tuple[str, str, str]] = {
    # scheme: (module, class, extra to install)
    "postgresql": (".postgres", "PostgresStore", "postgres"),
    "postgres": (".postgres", "PostgresStore", "postgres"),
    "etcd": (".etcd", "EtcdStore", "etcd"),
    "etcds": (".etcd", "EtcdStore", "etcd"),
    "redis": (".redis", "RedisStore", "redis"),
    "rediss": (".redis", "RedisStore", "redis"),
}


def open_store(
    target: str | os.PathLike[str],
    *,
    durability: Literal["fsync", "none"] | None = None,
    lock_timeout: float | None = None,
    max_value_bytes: int | None = None,
    history_limit: int | None = None,
    compact_bytes: int | None = None,
    trust_owner: bool | None = None,
    schema: str | None = None,
    min_connections: int | None = None,
    max_connections: int | None = None,
    connect_timeout: float | None = None,
    idle_txn_timeout: float | None = None,
    migrate: bool | None = None,
    serializable: bool | None = None,
    timeout: float | None = None,
    commit_deadline: float | None = None,
    username: str | None = None,
    password: str | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    cert_file: str | os.PathLike[str] | None = None,
    key_file: str | os.PathLike[str] | None = None,
    namespace: str | None = None,
    wait_replicas: int | None = None,
    wait_timeout: float | None = None,
    clock: Clock | None = None,
    **other: Any,
) -> Store:
    """Open (creating if needed) a store.

    A directory path (or a ``file://`` URL) gives a ``FileStore`` (one host, many processes);
    ``postgresql://`` gives the PostgreSQL backend, ``etcd://host:port,...`` the etcd backend and
    ``redis://host:port/db`` (or ``rediss://``) the Redis backend, with the same API and
    semantics. Any other ``scheme://`` is an ``InvalidArgumentError``: it is never taken for a
    local directory name.

    Options (None: the backend's default; an option the backend does not take is an
    ``InvalidArgumentError`` naming the ones it does):

    - every backend: ``max_value_bytes`` (8 MiB), ``history_limit`` (1000), ``clock``;
    - file store: ``durability`` ("fsync" or "none"), ``lock_timeout`` (10 s),
      ``compact_bytes`` (8 MiB), ``trust_owner`` (False);
    - PostgreSQL: ``schema``, ``min_connections`` (1), ``max_connections`` (10),
      ``connect_timeout`` (10 s), ``lock_timeout`` (10 s), ``idle_txn_timeout`` (60 s),
      ``migrate`` (True);
    - etcd: ``serializable`` (False), ``timeout`` (5 s), ``commit_deadline`` (30 s), and for a
      secured cluster (``etcds://``, where the etcd backend supports it) ``username``,
      ``password``, ``ca_file``, ``cert_file``, ``key_file``;
    - Redis: ``namespace`` ("fencedstate"), ``durability`` ("fsync": refuse a server that can
      lose an acknowledged commit; or "none"), ``wait_replicas`` (0) and ``wait_timeout`` (1 s)
      for ``WAIT`` after each commit, ``timeout`` (10 s), ``commit_deadline`` (30 s),
      ``max_connections`` (16); the first four may also be URL parameters (docs/redis.md).
    """
    given = {
        "durability": durability,
        "lock_timeout": lock_timeout,
        "max_value_bytes": max_value_bytes,
        "history_limit": history_limit,
        "compact_bytes": compact_bytes,
        "trust_owner": trust_owner,
        "schema": schema,
        "min_connections": min_connections,
        "max_connections": max_connections,
        "connect_timeout": connect_timeout,
        "idle_txn_timeout": idle_txn_timeout,
        "migrate": migrate,
        "serializable": serializable,
        "timeout": timeout,
        "commit_deadline": commit_deadline,
        "username": username,
        "password": password,
        "ca_file": ca_file,
        "cert_file": cert_file,
        "key_file": key_file,
        "namespace": namespace,
        "wait_replicas": wait_replicas,
        "wait_timeout": wait_timeout,
        "clock": clock,
    }
    options = {k: v for k, v in given.items() if v is not None} | other
    text = os.fspath(target) if isinstance(target, (str, os.PathLike)) else None
    if not isinstance(text, str) or not text:
        raise InvalidArgumentError(
            f"store location {target!r} is not a directory path or URL; supported: "
            f"{supported_locations()}"
        )
    match = _URL.match(text)
    if match is None:
        return FileStore(text, **_check_options(FileStore, "the file store", options))
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "file":
        host, slash, path = rest.partition("/")
        if host not in ("", "localhost") or not slash:
            raise InvalidArgumentError(
                f"file URL {_redact(text)!r} must name an absolute local path (file:///dir)"
            )
        return FileStore("/" + path, **_check_options(FileStore, "the file store", options))
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
    store_cls = getattr(backend_module, cls)
    checked = _check_options(store_cls, f"the {scheme}:// backend", options)
    return cast(Store, store_cls(text, **checked))


def options_of(store_cls: type[Store]) -> list[str]:
    """The keyword options a backend's constructor takes (from its signature), sorted."""
    params = inspect.signature(store_cls.__init__).parameters.values()
    return sorted(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def _check_options(store_cls: type[Store], what: str, options: dict[str, Any]) -> dict[str, Any]:
    valid = options_of(store_cls)
    for name in options:
        if name not in valid:
            near = difflib.get_close_matches(name, valid, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise InvalidArgumentError(
                f"unknown option {name!r} for {what}{hint}; valid options: {', '.join(valid)}"
            )
    return options


def is_url(text: str) -> bool:
    """True if ``text`` starts with ``scheme://`` (and so is never a directory name)."""
    return _URL.match(text) is not None


def local_dir(target: str) -> str | None:
    """The directory a path or ``file://`` URL names; None for a server's URL."""
    if not is_url(target):
        return target
    parts = urlsplit(target)
    return unquote(parts.path) if parts.scheme.lower() == "file" else None


def no_store_at(target: str) -> str | None:
    """The absolute directory of ``target`` if it is a file store's location with no store in
    it yet (opening it creates one); None for a store, or a server's URL."""
    local = local_dir(target)
    if local is None or os.path.isfile(os.path.join(local, MARKER)):
        return None
    return os.path.abspath(local)


def supported_locations() -> str:
    """A one-line list of the locations ``open_store`` accepts (for error messages)."""
    urls = sorted({f"{s}:// (extra {e!r})" for s, (_, _, e) in _BACKENDS.items()})
    return "a directory path, file:///dir, " + ", ".join(urls)


def _redact(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)

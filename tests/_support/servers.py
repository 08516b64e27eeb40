"""A test's own database server (PostgreSQL, etcd, Redis) for the length of a ``with`` block."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar


class Server(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Server)


@contextmanager
def running(server: S) -> Iterator[S]:
    """``server`` started, and stopped when the block ends (also when it fails)."""
    try:
        server.start()
        yield server
    finally:
        server.stop()

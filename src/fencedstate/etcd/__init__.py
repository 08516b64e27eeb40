"""The etcd backend: ``fencedstate.open_store("etcd://host:port,host:port/namespace")``."""

from __future__ import annotations

from .store import EtcdClock, EtcdStore

__all__ = ["EtcdClock", "EtcdStore"]

"""Shared fixtures. ``store_factory`` runs a test once per backend (the semantics suite)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import fencedstate as fs

sys.path.insert(0, os.path.dirname(__file__))  # helper modules: _support, pg_server, etcd_cluster
from etcd_cluster import etcd_cluster  # noqa: F401  the session's 3-member etcd cluster
from pg_server import pg_server, pg_url  # noqa: F401  PostgreSQL fixtures (issue 7)
from redis_server import redis_server, redis_url  # noqa: F401  Redis fixtures (issue 23)

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_DISABLE_VERSION_CHECK", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

# Backends the semantics suite runs on.
BACKENDS = ["file", "postgres", "etcd", "redis"]

StoreFactory = Callable[..., fs.Store]


@pytest.fixture(params=BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A function that opens a fresh store of one backend (same target on every call)."""
    opened: list[fs.Store] = []
    if request.param == "file":
        target: str = str(tmp_path / "store")
    elif request.param == "postgres":
        target = request.getfixturevalue("pg_url")
    elif request.param == "redis":  # a fresh namespace per test on the session's server
        target = request.getfixturevalue("redis_url")
    else:  # a fresh namespace per test on the session's cluster
        target = request.getfixturevalue("etcd_cluster").url(f"t-{uuid.uuid4().hex[:12]}")

    def make(**options: Any) -> fs.Store:
        store = fs.open_store(target, **options)
        opened.append(store)
        return store

    make.target = target  # type: ignore[attr-defined]
    make.backend = request.param  # type: ignore[attr-defined]
    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> fs.Store:
    """A fresh store of each backend."""
    return store_factory()

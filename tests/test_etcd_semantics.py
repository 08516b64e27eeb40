"""The shared semantics suite (tests/test_semantics.py) run on the etcd backend, on a real
3-member cluster, each test in its own namespace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from etcd_cluster import EtcdCluster, etcd_cluster  # noqa: F401  session cluster fixture
from test_semantics import *  # noqa: F403  the shared tests, collected here again

import fencedstate as fs


@pytest.fixture(params=["etcd"])
def store_factory(request: pytest.FixtureRequest, etcd_cluster: EtcdCluster) -> Iterator[Any]:  # noqa: F811
    """Overrides conftest's factory in this module: a fresh etcd namespace per test."""
    opened: list[fs.Store] = []
    target = etcd_cluster.url(f"sem-{uuid.uuid4().hex[:12]}")

    def make(**options: Any) -> fs.Store:
        store = fs.open_store(target, **options)
        opened.append(store)
        return store

    make.target = target  # type: ignore[attr-defined]
    make.backend = request.param  # type: ignore[attr-defined]
    yield make
    for store in opened:
        store.close()

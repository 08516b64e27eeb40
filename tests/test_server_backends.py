"""What is the same on the etcd and Redis backends under many real processes (the semantics
suite runs on every backend through conftest's ``store_factory``; this is the load part)."""

from __future__ import annotations

import uuid

import pytest
from _support import store_workers as workers
from _support.faults import WAIT

import fencedstate as fs


@pytest.fixture(params=["etcd", pytest.param("redis", marks=pytest.mark.slow)])
def server_url(request: pytest.FixtureRequest) -> str:
    """A fresh namespace on the session's etcd cluster or Redis server."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return str(request.getfixturevalue("etcd_cluster").url(f"t-{uuid.uuid4().hex[:12]}"))


def test_eight_processes_250_updates_each_exact(server_url: str) -> None:
    results = workers.run_updaters(
        server_url, "counter", procs=8, n=250, options={}, timeout=WAIT * 2
    )
    assert all(r[1] == "ok" for r in results), results
    with fs.open_store(server_url) as store:
        snap = store.get("counter")
        assert snap is not None and (snap.value, snap.version) == (2000, 2000)
        puts = [e for e in store.history("counter", limit=None) if e.op == "put"]
    # The writers prune the journal to their history_limit (1000): Redis in every commit,
    # etcd every 64 commits.
    assert len(puts) == 1000 if server_url.startswith("redis") else 1000 <= len(puts) < 1064
    assert [e.value for e in puts] == list(range(2001 - len(puts), 2001))
    assert [e.version for e in puts] == [e.value for e in puts]

"""What is the same on the server backends (the semantics suite runs on every backend through
conftest's ``store_factory``; these are the multi-process and clock tests it does not have)."""

from __future__ import annotations

import time
import uuid

import pytest
from _support import store_workers as workers
from _support.faults import WAIT

import fencedstate as fs


def _url(request: pytest.FixtureRequest, backend: str) -> str:
    """A fresh store location on the session's server of ``backend``."""
    if backend == "etcd":
        return str(request.getfixturevalue("etcd_cluster").url(f"t-{uuid.uuid4().hex[:12]}"))
    return str(request.getfixturevalue({"postgres": "pg_url", "redis": "redis_url"}[backend]))


@pytest.mark.parametrize("backend", ["etcd", pytest.param("redis", marks=pytest.mark.slow)])
def test_eight_processes_250_updates_each_exact(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = _url(request, backend)
    results = workers.run_updaters(url, "counter", procs=8, n=250, options={}, timeout=WAIT * 2)
    assert all(r[1] == "ok" for r in results), results
    with fs.open_store(url) as store:
        snap = store.get("counter")
        assert snap is not None and (snap.value, snap.version) == (2000, 2000)
        puts = [e for e in store.history("counter", limit=None) if e.op == "put"]
    # The writers prune the journal to their history_limit (1000): Redis in every commit,
    # etcd every 64 commits.
    assert len(puts) == 1000 if backend == "redis" else 1000 <= len(puts) < 1064
    assert [e.value for e in puts] == list(range(2001 - len(puts), 2001))
    assert [e.version for e in puts] == [e.value for e in puts]


@pytest.mark.parametrize("backend", ["postgres", "redis"])
def test_client_clock_skew_does_not_move_leases(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leases run on the server's clock: a client whose clocks jump an hour ahead neither
    sees a live claim as expired nor loses its own."""
    with fs.open_store(_url(request, backend)) as store:
        claim = store.claim("k", owner="a", ttl=30)
        skew = 3600.0
        real_mono, real_time, real_gettime = time.monotonic, time.time, time.clock_gettime
        monkeypatch.setattr(time, "monotonic", lambda: real_mono() + skew)
        monkeypatch.setattr(time, "time", lambda: real_time() + skew)
        monkeypatch.setattr(time, "clock_gettime", lambda c: real_gettime(c) + skew)
        with pytest.raises(fs.ClaimHeldError) as err:
            store.claim("k", owner="b", ttl=30)  # the server says the lease is live
        assert 0 < err.value.expires_in <= 30
        assert claim.commit("still mine").version == 1
        claim.renew()
        assert 0 < claim.expires_in <= 30

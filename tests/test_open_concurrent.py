"""Threads of one process opening one new store directory at once all get the store.

Found by CrewAI's own ``test_parallel_flow_initialization_does_not_use_store_lock`` (16 threads
building a persistence on one new path): the store marker's temporary file was named by the
process id only, so one thread renamed another's away and that thread failed with ENOENT.
"""

from __future__ import annotations

import threading
from pathlib import Path

import fencedstate as fs


def _open_at_once(root: Path, n: int) -> tuple[list[fs.Store], list[BaseException]]:
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    stores: list[fs.Store] = []

    def open_it() -> None:
        barrier.wait()
        try:
            stores.append(fs.open_store(root))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stores, errors


def test_threads_open_one_new_store_at_once(tmp_path: Path) -> None:
    for trial in range(10):
        root = tmp_path / f"new{trial}"
        stores, errors = _open_at_once(root, 16)
        assert errors == []
        assert len(stores) == 16
        stores[0].put("k", 1, expected_version=0)
        assert stores[15].get("k") is not None
        assert sorted(p.name for p in root.iterdir()) == ["data", "fencedstate.json", "locks"]

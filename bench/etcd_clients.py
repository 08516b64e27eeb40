#!/usr/bin/env python
"""Client choice for the etcd backend: etcd3gw vs the v3 JSON gateway spoken with httpx.

``python bench/etcd_clients.py [--n 300]``

On a throwaway 3-member cluster (tests/etcd_cluster.py): N sequential txns (compare the key's
mod_revision, put) and N linearizable range reads with each client, then N reads as 8
concurrent asyncio tasks with ``httpx.AsyncClient`` vs 8 threads over etcd3gw (it has no
async API). Prints median latencies and the ratios etcd3gw / httpx.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import bench_args  # bench/ is sys.path[0] when run as a script

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import httpx  # noqa: E402
from etcd3gw.client import Etcd3Client  # noqa: E402
from etcd_cluster import EtcdCluster  # noqa: E402


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _time(fn: Any, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    bench_args.at_least_one(ap, args, "--n")
    n = args.n
    data = Path(tempfile.mkdtemp(prefix="fsbench-etcdc-"))
    cluster = EtcdCluster(data)
    try:
        cluster.start()
        m = cluster.members[0]
        gw = Etcd3Client(host="127.0.0.1", port=m.client_port, api_path="/v3/")
        hx = httpx.Client()
        url = m.client_url

        def hx_txn(i: int) -> None:
            key = _b64(b"h")
            r = hx.post(url + "/v3/kv/range", json={"key": key}).json()
            mod = r["kvs"][0]["mod_revision"] if r.get("kvs") else "0"
            body = {
                "compare": [{"key": key, "target": "MOD", "result": "EQUAL", "mod_revision": mod}],
                "success": [{"request_put": {"key": key, "value": _b64(str(i).encode())}}],
            }
            assert hx.post(url + "/v3/kv/txn", json=body).json().get("succeeded")

        def gw_txn(i: int) -> None:
            r = gw.get("g", metadata=True)
            mod = r[0][1]["mod_revision"] if r else "0"
            body = {
                "compare": [
                    {"key": _b64(b"g"), "target": "MOD", "result": "EQUAL", "mod_revision": mod}
                ],
                "success": [{"request_put": {"key": _b64(b"g"), "value": _b64(str(i).encode())}}],
            }
            assert gw.transaction(body).get("succeeded")

        def hx_get(i: int) -> None:
            hx.post(url + "/v3/kv/range", json={"key": _b64(b"h")}).json()

        def gw_get(i: int) -> None:
            gw.get("g")

        res: dict[str, float] = {}
        for name, fn in (("txn", None), ("get", None)):
            del fn
            g = _time(gw_txn if name == "txn" else gw_get, n)
            h = _time(hx_txn if name == "txn" else hx_get, n)
            res[f"etcd3gw {name} p50 ms"] = statistics.median(g) * 1e3
            res[f"httpx {name} p50 ms"] = statistics.median(h) * 1e3

        t = time.perf_counter()
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(gw_get, range(n)))
        res["etcd3gw 8 threads reads/s"] = n / (time.perf_counter() - t)

        async def many() -> float:
            async with httpx.AsyncClient() as ac:
                sem = asyncio.Semaphore(8)

                async def one(i: int) -> None:
                    async with sem:
                        await ac.post(url + "/v3/kv/range", json={"key": _b64(b"h")})

                t0 = time.perf_counter()
                await asyncio.gather(*(one(i) for i in range(n)))
                return n / (time.perf_counter() - t0)

        res["httpx async 8 tasks reads/s"] = asyncio.run(many())
        for k, v in res.items():
            print(f"{k:32} {v:10.2f}")
        for op in ("txn", "get"):
            ratio = res[f"etcd3gw {op} p50 ms"] / res[f"httpx {op} p50 ms"]
            print(f"{'ratio ' + op + ' etcd3gw/httpx':32} {ratio:10.2f}")
        print(
            f"{'ratio concurrent httpx/etcd3gw':32} "
            f"{res['httpx async 8 tasks reads/s'] / res['etcd3gw 8 threads reads/s']:10.2f}"
        )
    finally:
        cluster.stop()
        shutil.rmtree(data, ignore_errors=True)  # ~370 MB: etcd preallocates its WAL
    return 0


if __name__ == "__main__":
    sys.exit(main())

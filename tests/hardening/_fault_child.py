"""A writer run under ``fiu-run -x``: real libc faults (libfiu) injected into its commits.

Usage: ``fiu-run -x -f "" python _fault_child.py STORE OUT SEED OPS POINTS_JSON``

Faults are armed only around each store operation (never while it records results), through
libfiu's own C API (``fiu_enable_external``) with a seeded decision callback, so every injected
fault is counted and the run is reproducible. Each operation's outcome is appended to OUT as
one JSON line, fsynced, before the next operation starts:

    {"op": "put", "key": k, "ok": true, "version": v, "value": x}
    {"op": "put", "key": k, "ok": false, "error": "StorageError", "landed": bool}
    {"untyped": "<repr>"}           # any exception that is not a FencedStateError

``landed`` says whether a failed operation is nevertheless visible afterwards (read with the
faults disarmed): a typed error must mean "nothing was acknowledged and nothing changed".
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import sys
import traceback
from collections.abc import Callable
from typing import Any

import fencedstate as fs

_CB = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.POINTER(ctypes.c_int),
    ctypes.POINTER(ctypes.c_void_p),
    ctypes.POINTER(ctypes.c_uint),
)


class Faults:
    """Arms and disarms libfiu failure points; counts the faults it really injected."""

    def __init__(self, points: list[dict[str, Any]], seed: int) -> None:
        self.lib = ctypes.CDLL("libfiu.so.0")
        self.lib.fiu_enable_external.argtypes = [
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_uint,
            _CB,
        ]
        self.lib.fiu_disable.argtypes = [ctypes.c_char_p]
        self.points = {p["name"].encode(): p for p in points}
        self.rng = random.Random(seed)
        self.injected: dict[str, int] = {}
        self.armed_now: list[str] = []
        self._cb = _CB(self._decide)  # keep a reference: libfiu calls it from C

    def _decide(self, name: bytes, failnum: Any, failinfo: Any, flags: Any) -> int:
        p = self.points[name]
        if self.rng.random() >= p["p"]:
            return 0
        failinfo[0] = self.rng.choice(p["errnos"])
        key = name.decode()
        self.injected[key] = self.injected.get(key, 0) + 1
        self.armed_now.append(key)
        return 1

    def arm(self) -> None:
        self.armed_now = []
        for name in self.points:
            self.lib.fiu_enable_external(name, 1, None, 0, self._cb)

    def disarm(self) -> None:
        for name in self.points:
            self.lib.fiu_disable(name)


def main() -> None:
    root, out_path, seed, n_ops = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    points = json.loads(sys.argv[5])
    faults = Faults(points, seed)
    rng = random.Random(seed)
    store = fs.open_store(root, lock_timeout=5.0, compact_bytes=4096, history_limit=8)
    keys = ["a", "b/c", "d/e/f"]
    out = open(out_path, "a", encoding="utf-8")  # noqa: SIM115 - closed at the end

    def record(rec: dict[str, Any]) -> None:
        out.write(json.dumps(rec) + "\n")
        out.flush()
        os.fsync(out.fileno())

    def attempt(
        op: str, key: str, fn: Callable[[], Any], value: Any, also: tuple[str, ...] = ()
    ) -> Any:
        before = {k: store.get(k) for k in (key, *also)}
        faults.arm()
        try:
            result = fn()
        except fs.FencedStateError as exc:
            faults.disarm()
            landed = []
            for k, b in before.items():
                after = store.get(k)
                landed.append(
                    after is not None
                    and after.value == value
                    and (b is None or after.version > b.version)
                )
            record(
                {
                    "op": op,
                    "key": key,
                    "ok": False,
                    "error": type(exc).__name__,
                    "msg": str(exc),
                    "injected": faults.armed_now,
                    "landed": landed[0],
                    "landed_all": all(landed),
                    "landed_any": any(landed),
                }
            )
            return None
        except BaseException as exc:  # the bug this test exists to catch
            faults.disarm()
            record(
                {
                    "untyped": repr(exc),
                    "op": op,
                    "injected": faults.armed_now,
                    "tb": traceback.format_exc(),
                }
            )
            return None
        faults.disarm()
        if op in ("put", "commit"):
            record(
                {
                    "op": op,
                    "key": key,
                    "ok": True,
                    "version": result.version,
                    "value": value,
                    "injected": faults.armed_now,
                }
            )
        elif op == "put_many":
            for k, snap in result.items():
                record(
                    {
                        "op": op,
                        "key": k,
                        "ok": True,
                        "version": snap.version,
                        "value": snap.value,
                        "injected": faults.armed_now,
                    }
                )
        else:
            record({"op": op, "key": key, "ok": True, "injected": faults.armed_now})
        return result

    for i in range(n_ops):
        key = rng.choice(keys)
        value = {"i": i, "seed": seed, "pad": "x" * rng.randrange(0, 600)}
        kind = rng.random()
        snap = store.get(key)
        version = 0 if snap is None else snap.version
        if kind < 0.55:
            attempt(
                "put",
                key,
                lambda k=key, v=value, e=version: store.put(k, v, expected_version=e, writer="w"),
                value,
            )
        elif kind < 0.75:
            claim = attempt("claim", key, lambda k=key: store.claim(k, f"o{seed}", 30.0), None)
            if claim is not None:
                attempt(
                    "commit",
                    key,
                    lambda c=claim, v=value, e=version: c.commit(v, expected_version=e),
                    value,
                )
                if attempt("release", key, claim.release, None) is None:
                    attempt("reclaim", key, lambda k=key: store.reclaim(k, by="r"), None)
        elif kind < 0.9:
            other = keys[(keys.index(key) + 1) % len(keys)]
            o = store.get(other)
            writes = {key: (value, version), other: (value, 0 if o is None else o.version)}
            attempt(
                "put_many",
                key,
                lambda w=writes: store.put_many(w, writer="w"),
                value,
                also=(other,),
            )
        else:
            attempt("reclaim", key, lambda k=key: store.reclaim(k, by="r"), None)
    faults.disarm()
    # The faults are gone: every key must take commits again, and claims must be free.
    for key in keys:
        store.reclaim(key, by="after")  # a release that failed under faults leaves a claim
        for _ in range(3):
            snap = store.get(key)
            value = {"after": True, "key": key}
            new = store.put(
                key, value, expected_version=0 if snap is None else snap.version, writer="after"
            )
            record(
                {
                    "op": "after",
                    "key": key,
                    "ok": True,
                    "version": new.version,
                    "value": value,
                    "injected": [],
                }
            )
    record({"done": True, "injected": faults.injected})
    out.close()


if __name__ == "__main__":
    main()

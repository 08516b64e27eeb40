"""Client-observed histories: ``Recorder`` writes them, ``load_history`` merges them back.

One JSON line per invoke and per return, timestamped with ``time.monotonic_ns()``, flushed per
line, one file per worker. ``linearizability`` checks the merged history.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

import fencedstate as fs

__all__ = ["INF", "Op", "Recorder", "history_files", "load_history"]

INF = float("inf")
_ERRORS: dict[type[BaseException], str] = {
    fs.ConflictError: "conflict",
    fs.FencedError: "fenced",
    fs.ClaimHeldError: "held",
}


@dataclass
class Op:
    """One operation of a history; ``ret`` None means its outcome is unknown."""

    id: str
    key: str
    f: str
    args: dict[str, Any]
    inv: float
    ret: float | None = None
    res: dict[str, Any] | None = None
    deadline: float = INF  # an unknown outcome took effect by then or never (worker's death)


class Recorder:
    """Runs store operations and logs invoke/return lines to ``path`` (flushed per line).

    Values written must be unique ids (str); ``get`` logs the id and version it saw.
    Typed refusals (conflict, fenced, claim held) are results; any other exception is logged
    as an unknown outcome and re-raised.
    """

    def __init__(self, store: fs.Store, path: str, proc: str) -> None:
        self.store = store
        self.proc = proc
        self._n = 0
        self._out: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        """Close the history file."""
        self._out.close()

    def _line(self, rec: dict[str, Any]) -> None:
        self._out.write(json.dumps(rec) + "\n")
        self._out.flush()

    def _run(self, key: str, f: str, args: dict[str, Any], call: Any) -> Any:
        self._n += 1
        oid = f"{self.proc}.{self._n}"
        self._line(
            {"t": "inv", "id": oid, "key": key, "f": f, "args": args, "ts": time.monotonic_ns()}
        )
        try:
            out, res = call()
        except tuple(_ERRORS) as exc:
            self._line(
                {
                    "t": "ret",
                    "id": oid,
                    "ts": time.monotonic_ns(),
                    "res": {"err": _ERRORS[type(exc)]},
                }
            )
            raise
        except BaseException:
            self._line({"t": "ret", "id": oid, "ts": time.monotonic_ns(), "res": None})
            raise
        self._line({"t": "ret", "id": oid, "ts": time.monotonic_ns(), "res": res})
        return out

    def get(self, key: str) -> fs.Snapshot | None:
        """``store.get``, logged."""

        def call() -> tuple[Any, dict[str, Any]]:
            s = self.store.get(key)
            return s, {
                "value": None if s is None else s.value,
                "version": 0 if s is None else s.version,
            }

        snap: fs.Snapshot | None = self._run(key, "get", {}, call)
        return snap

    def put(self, key: str, value: Any, expected_version: int | None) -> fs.Snapshot:
        """``store.put`` of a unique value, logged."""

        def call() -> tuple[Any, dict[str, Any]]:
            s = self.store.put(key, value, expected_version=expected_version)
            return s, {"version": s.version}

        snap: fs.Snapshot = self._run(
            key, "put", {"value": value, "expected": expected_version}, call
        )
        return snap

    def put_many(self, writes: dict[str, tuple[Any, int | None]]) -> dict[str, fs.Snapshot]:
        """``store.put_many``, logged as one CAS put per key with the same times.

        Only per-key order is checked: keys that did not cause a refusal are logged as
        ``aborted`` (no effect)."""
        ids = {}
        for key, (value, expected) in sorted(writes.items()):
            self._n += 1
            ids[key] = f"{self.proc}.{self._n}"
            self._line(
                {
                    "t": "inv",
                    "id": ids[key],
                    "key": key,
                    "f": "put",
                    "args": {"value": value, "expected": expected, "multi": True},
                    "ts": time.monotonic_ns(),
                }
            )
        try:
            done = self.store.put_many(writes)
        except (fs.ConflictError, fs.ClaimHeldError) as exc:
            ts = time.monotonic_ns()
            for key, oid in ids.items():
                err = _ERRORS[type(exc)] if key == getattr(exc, "key", None) else "aborted"
                self._line({"t": "ret", "id": oid, "ts": ts, "res": {"err": err}})
            raise
        except BaseException:
            ts = time.monotonic_ns()
            for oid in ids.values():
                self._line({"t": "ret", "id": oid, "ts": ts, "res": None})
            raise
        ts = time.monotonic_ns()
        for key, oid in ids.items():
            self._line({"t": "ret", "id": oid, "ts": ts, "res": {"version": done[key].version}})
        return done

    def delete(self, key: str, expected_version: int | None) -> int:
        """``store.delete``, logged."""

        def call() -> tuple[Any, dict[str, Any]]:
            v = self.store.delete(key, expected_version=expected_version)
            return v, {"version": v}

        v: int = self._run(key, "delete", {"expected": expected_version}, call)
        return v

    def claim(self, key: str, owner: str, ttl: float) -> fs.Claim:
        """``store.claim`` (no waiting), logged."""

        def call() -> tuple[Any, dict[str, Any]]:
            c = self.store.claim(key, owner, ttl)
            return c, {"epoch": c.epoch}

        c: fs.Claim = self._run(key, "claim", {"owner": owner, "ttl": ttl}, call)
        return c

    def commit(self, claim: fs.Claim, value: Any, expected_version: int | None) -> fs.Snapshot:
        """``claim.commit``, logged."""

        def call() -> tuple[Any, dict[str, Any]]:
            s = claim.commit(value, expected_version)
            return s, {"version": s.version}

        args = {
            "owner": claim.owner,
            "epoch": claim.epoch,
            "value": value,
            "expected": expected_version,
        }
        snap: fs.Snapshot = self._run(claim.key, "commit", args, call)
        return snap

    def release(self, claim: fs.Claim) -> bool:
        """``claim.release``, logged."""

        def call() -> tuple[Any, dict[str, Any]]:
            r = claim.release()
            return r, {"released": r}

        done: bool = self._run(
            claim.key, "release", {"owner": claim.owner, "epoch": claim.epoch}, call
        )
        return done

    def reclaim(self, key: str, by: str) -> int:
        """``store.reclaim``, logged."""

        def call() -> tuple[Any, dict[str, Any]]:
            e = self.store.reclaim(key, by=by)
            return e, {"epoch": e}

        e: int = self._run(key, "reclaim", {"by": by}, call)
        return e


def load_history(paths: Iterable[str], deaths: dict[str, float] | None = None) -> list[Op]:
    """Merge workers' history files; a torn last line (worker killed mid-write) is skipped.

    ``deaths`` maps a worker (``Recorder`` proc) to a monotonic_ns time by which it was dead.
    A single-key write without a return took effect, if ever, by the return of the first
    write on its key invoked after that death (acknowledged or refused: either answers only
    once the state it saw is durable): a dead writer's line is made visible by the next sync
    that covers it, or cut off by a failed one (file store, commit path v2).
    Parts of a multi-key commit are not bounded: recovery may finish them later.
    """
    ops: dict[str, Op] = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                rec = json.loads(line)
                if rec["t"] == "inv":
                    op = Op(rec["id"], rec["key"], rec["f"], rec["args"], float(rec["ts"]))
                    proc = rec["id"].rsplit(".", 1)[0]
                    if deaths and proc in deaths and not op.args.get("multi"):
                        op.deadline = deaths[proc]
                    ops[rec["id"]] = op
                else:
                    op = ops[rec["id"]]
                    if rec["res"] is not None:
                        op.ret, op.res = float(rec["ts"]), rec["res"]
    history = list(ops.values())
    _bound_by_next_write(history)
    return history


def _bound_by_next_write(history: list[Op]) -> None:
    """Move each dead writer's deadline to the first answered write on its key after it."""
    acked: dict[str, list[tuple[float, float]]] = {}
    for op in history:
        if op.f != "get" and op.ret is not None:
            acked.setdefault(op.key, []).append((op.inv, op.ret))
    for op in history:
        if op.ret is None and op.deadline != INF:
            after = [ret for inv, ret in acked.get(op.key, []) if inv >= op.deadline]
            op.deadline = min(after, default=INF)


def history_files(directory: str) -> list[str]:
    """The ``*.history`` files in ``directory``."""
    return sorted(
        os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".history")
    )

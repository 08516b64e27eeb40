"""Client-observed histories and a linearizability checker for them (Wing & Gong / Lowe).

Workers record every operation they invoke and what it returned (``Recorder``: one JSON line per
invoke and per return, timestamped with ``time.monotonic_ns()``, flushed per line, one file per
worker). ``check_history`` decides whether a legal sequential order exists that respects
real time: per key (keys are independent), depth-first over the operations that may take effect
next, memoising (linearized set, model state) pairs already explored.

The model of one key is (exists, value, version, epoch, holder, lease window) with get, CAS put,
delete, claim, claim commit, release and reclaim, following ``fencedstate.rules``. An operation
with no return (its worker was killed) or an unknown outcome may have taken effect at any point
after its invoke, or never. Leases are modelled loosely from the recorded times: a lease granted
by a claim that ran in [inv, ret] with ``ttl`` is live at least until inv + ttl and at most until
ret + ttl; an operation may observe it live if it started before the latest bound, expired if it
ended after the earliest. With long TTLs this is exact; with short ones it only admits more.
Store timestamps come from CLOCK_BOOTTIME, these from CLOCK_MONOTONIC: equal on a host that
does not suspend during the run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

import fencedstate as fs

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


# -- the model -----------------------------------------------------------------------------------

# (exists, value as canonical JSON, version, epoch, holder, lease_lo, lease_hi)
ModelState = tuple[bool, str | None, int, int, str | None, float, float]
INITIAL: ModelState = (False, None, 0, 0, None, 0.0, 0.0)


def step(s: ModelState, op: Op) -> ModelState | None:
    """The state after ``op`` took effect in ``s`` with its recorded result, or None if it
    cannot have; for an unknown outcome, the state if it succeeded (None if it cannot)."""
    exists, value, version, epoch, holder, lo, hi = s
    ret = INF if op.ret is None else op.ret
    live = holder is not None and op.inv < hi  # may the lease still be live during op?
    expired = holder is None or ret > lo  # may it have expired during op?
    res = op.res
    err = None if res is None else res.get("err")
    a = op.args
    visible = version if exists else 0
    if op.f == "get":
        if res is None:  # a read with no return observed nothing
            return s
        ok = (exists and _canon(res["value"]) == value and res["version"] == version) or (
            not exists and res["value"] is None
        )
        return s if ok else None
    if err == "aborted":  # one key of a refused multi-key commit: no effect here
        return s
    if op.f in ("put", "delete"):
        if err == "held":
            return s if live else None
        if not expired:
            return None
        exp = a.get("expected")
        mismatch = (exp is not None and exp != visible) or (op.f == "delete" and not exists)
        if err == "conflict":
            return s if mismatch else None
        if err is not None or mismatch:
            return None
        if res is not None and res["version"] != version + 1:
            return None
        if op.f == "put":
            return (True, _canon(a["value"]), version + 1, epoch, holder, lo, hi)
        return (False, None, version + 1, epoch, holder, lo, hi)
    if op.f == "claim":
        if err == "held":
            return s if live else None
        if err is not None or not expired:
            return None
        if res is not None and res["epoch"] != epoch + 1:
            return None
        ttl_ns = float(a["ttl"]) * 1e9
        return (exists, value, version, epoch + 1, a["owner"], op.inv + ttl_ns, ret + ttl_ns)
    if op.f == "commit":
        current = a["epoch"] == epoch and holder == a["owner"]
        if err == "fenced":
            return s if (not current or expired) else None
        if not (current and live):
            return None
        exp = a.get("expected")
        mismatch = exp is not None and exp != visible
        if err == "conflict":
            return s if mismatch else None
        if err is not None or mismatch:
            return None
        if res is not None and res["version"] != version + 1:
            return None
        return (True, _canon(a["value"]), version + 1, epoch, holder, lo, hi)
    if op.f == "release":
        mine = a["epoch"] == epoch and holder == a["owner"]
        if res is not None and res.get("released") is not None and res["released"] != mine:
            return None
        return (exists, value, version, epoch, None, 0.0, 0.0) if mine else s
    if op.f == "reclaim":
        if res is not None and res["epoch"] != epoch + 1:
            return None
        return (exists, value, version, epoch + 1, None, 0.0, 0.0)
    raise ValueError(f"unknown operation {op.f!r}")


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# -- the checker ---------------------------------------------------------------------------------


@dataclass
class KeyResult:
    """The verdict for one key's sub-history."""

    key: str
    ops: int
    unknown: int
    ok: bool
    window: list[Op] = field(default_factory=list)


@dataclass
class Result:
    """The verdict for a whole history."""

    ok: bool
    ops: int
    keys: int
    unknown: int
    seconds: float
    failures: list[KeyResult]

    def summary(self) -> str:
        """One line: ops checked, keys, unknown outcomes, result."""
        return (
            f"linearizability: {self.ops} ops checked, {self.keys} keys, {self.unknown} "
            f"unknown outcomes, {'LINEARIZABLE' if self.ok else 'NOT LINEARIZABLE'} "
            f"({self.seconds:.2f}s)"
        )


def check_history(ops: Iterable[Op], *, max_states: int = 5_000_000) -> Result:
    """Check a merged history, key by key; on failure each bad key carries its smallest
    failing window (see ``smallest_window``)."""
    t0 = time.perf_counter()
    by_key: dict[str, list[Op]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    failures = []
    total = unknown = 0
    for key, kops in sorted(by_key.items()):
        total += len(kops)
        unk = sum(1 for o in kops if o.ret is None)
        unknown += unk
        if not check_key(kops, max_states=max_states):
            failures.append(KeyResult(key, len(kops), unk, False, smallest_window(kops)))
    return Result(not failures, total, len(by_key), unknown, time.perf_counter() - t0, failures)


def check_key(ops: list[Op], *, max_states: int = 5_000_000) -> bool:
    """True if one key's operations are linearizable against the model (starting empty).

    Operations without a return may be linearized at any point after their invoke, or never;
    the search ends when every operation with a return is linearized.
    """
    known = sorted((o for o in ops if o.ret is not None), key=lambda o: o.inv)
    pending = sorted((o for o in ops if o.ret is None), key=lambda o: o.inv)
    n = len(known)
    if n == 0:
        return True
    by_ret = sorted(range(n), key=lambda i: known[i].ret or 0.0)
    rets = [known[i].ret or 0.0 for i in range(n)]
    seen: set[tuple[int, int, ModelState]] = set()
    # stack of (done mask of known, done mask of pending, state, lo, rlo, latest done invoke)
    stack: list[tuple[int, int, ModelState, int, int, float]] = [(0, 0, INITIAL, 0, 0, 0.0)]
    full = (1 << n) - 1
    while stack:
        done, pdone, state, lo, rlo, horizon = stack.pop()
        if done == full:
            return True
        while (done >> lo) & 1:
            lo += 1
        while (done >> by_ret[rlo]) & 1:
            rlo += 1
        min_ret = rets[by_ret[rlo]]
        i = lo
        while i < n and known[i].inv < min_ret:
            if not (done >> i) & 1:
                nxt = step(state, known[i])
                if nxt is not None:
                    k = (done | (1 << i), pdone, nxt)
                    if k not in seen:
                        seen.add(k)
                        stack.append((k[0], pdone, nxt, lo, rlo, max(horizon, known[i].inv)))
            i += 1
        for j, p in enumerate(pending):
            if p.inv >= min_ret:
                break
            if (pdone >> j) & 1 or p.deadline < horizon:
                continue
            nxt = step(state, p)
            if nxt is not None and nxt != state:
                k = (done, pdone | (1 << j), nxt)
                if k not in seen:
                    seen.add(k)
                    stack.append((done, k[1], nxt, lo, rlo, horizon))
        if len(seen) > max_states:
            raise RuntimeError(f"search exceeded {max_states} states")
    return False


def smallest_window(ops: list[Op]) -> list[Op]:
    """A short failing window: the shortest failing prefix (by invoke time, found by
    bisection), cut at the last quiescent point before its end (every earlier operation had
    returned): the part before the cut is linearizable, the window is where it breaks."""
    ordered = sorted(ops, key=lambda o: o.inv)
    lo, hi = 1, len(ordered)
    while lo < hi:
        mid = (lo + hi) // 2
        if check_key(ordered[:mid]):
            lo = mid + 1
        else:
            hi = mid
    end = hi
    start = 0
    latest_ret = 0.0
    for i, o in enumerate(ordered[: end - 1]):
        latest_ret = max(latest_ret, o.inv if o.ret is None else o.ret)  # unknown: any time
        if latest_ret < ordered[i + 1].inv:
            start = i + 1
    return ordered[start:end]


def format_window(ops: list[Op]) -> str:
    """The window as text, one operation per line, times relative to its first invoke."""
    if not ops:
        return ""
    t0 = ops[0].inv
    lines = []
    for o in ops:
        ret = "   (no return)" if o.ret is None else f"{(o.ret - t0) / 1e6:10.3f}ms"
        lines.append(
            f"  {(o.inv - t0) / 1e6:10.3f}ms {ret}  {o.id:>10} {o.f:<8} "
            f"{json.dumps(o.args)} -> {json.dumps(o.res)}"
        )
    return "\n".join(lines)


def report(
    paths: Iterable[str], out: IO[str] = sys.stdout, deaths: dict[str, float] | None = None
) -> Result:
    """Load, check and print the summary (and the failing windows) of a history."""
    result = check_history(load_history(paths, deaths))
    print(result.summary(), file=out)
    for f in result.failures:
        print(f"key {f.key}: smallest failing window ({len(f.window)} ops):", file=out)
        print(format_window(f.window), file=out)
    return result


def history_files(directory: str) -> list[str]:
    """The ``*.history`` files in ``directory``."""
    return sorted(
        os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".history")
    )

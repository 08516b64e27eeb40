"""Client-observed histories and a linearizability checker for them (Wing & Gong / Lowe).

Workers record every operation they invoke and what it returned (``Recorder``, in
``history``). ``check_history`` decides whether a legal sequential order exists that respects
real time: per key (keys are independent), depth-first over the operations that may take effect
next, memoising (linearized set, model state) pairs already explored.

The model of one key is (exists, value, version, epoch, holder, lease window) with get, CAS put,
delete, claim, claim commit, release and reclaim, following ``fencedstate.core.rules``. An operation
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
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from .history import INF, Op, Recorder, history_files, load_history

__all__ = [
    "INF",
    "INITIAL",
    "KeyResult",
    "ModelState",
    "Op",
    "Recorder",
    "Result",
    "check_history",
    "check_key",
    "format_window",
    "history_files",
    "load_history",
    "report",
    "smallest_window",
    "step",
]


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
        outcome = _cas_outcome(err, res, mismatch, version)
        if outcome != "applied":
            return s if outcome == "refused" else None
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
        outcome = _cas_outcome(err, res, exp is not None and exp != visible, version)
        if outcome != "applied":
            return s if outcome == "refused" else None
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


def _cas_outcome(err: str | None, res: dict[str, Any] | None, mismatch: bool, version: int) -> str:
    """How a compare-and-set at ``version`` fits the model: ``"refused"`` (a conflict it
    predicts: no effect), ``"applied"`` (version + 1) or ``"impossible"``."""
    if err == "conflict":
        return "refused" if mismatch else "impossible"
    if err is not None or mismatch:
        return "impossible"
    if res is not None and res["version"] != version + 1:
        return "impossible"
    return "applied"


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

"""Running one configuration in real OS processes: workers released together by a barrier,
committing in a loop; repetitions summarized and the median kept."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import shutil
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from peers.approaches import Approach, short_name
from peers.baseline import SPAWN, in_src, under
from peers.ops import AgentCoherence, FencedState, Op, ac_host

CTX = mp.get_context("fork")


@dataclass
class WorkerResult:
    commits: int = 0
    retries: int = 0
    errors: int = 0
    error_sample: str = ""
    start: float = 0.0
    end: float = 0.0
    lat_us: list[float] = field(default_factory=list)
    module_file: str = ""  # fencedstate.__file__ in this worker (fencedstate rows)


def _worker(
    op_cls: type[Op],
    root: str,
    mode: str,
    idx: int,
    duration: float,
    barrier: Any,
    out: Any,
    op_kwargs: dict[str, Any],
) -> None:
    res = WorkerResult()
    op: Op | None = None
    try:
        op = op_cls(Path(root), mode, idx, **op_kwargs)
        res.module_file = str(getattr(op, "module_file", ""))
        barrier.wait(timeout=300)
        clock = time.perf_counter
        res.start = time.monotonic()
        deadline = res.start + duration
        lat = res.lat_us
        while True:
            t0 = clock()
            try:
                res.retries += op.commit()
            except Exception as exc:  # a peer's typed failure: counted, not acknowledged
                res.errors += 1
                if not res.error_sample:
                    res.error_sample = f"{type(exc).__name__}: {exc}"[:300]
                if res.errors > 100_000:
                    break
            else:
                res.commits += 1
                lat.append((clock() - t0) * 1e6)
            if time.monotonic() >= deadline:
                break
        res.end = time.monotonic()
    except BaseException as exc:  # setup failure: reported to the parent
        res.errors += 1
        res.error_sample = "setup: " + "".join(traceback.format_exception_only(exc))[:300]
        with contextlib.suppress(Exception):
            barrier.abort()
    finally:
        if op is not None:
            with contextlib.suppress(Exception):
                op.close()
        out.put((idx, asdict(res)))


def pct(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, round(q * (len(sorted_vals) - 1))))
    return sorted_vals[i]


@dataclass
class RunResult:
    approach: str
    mode: str
    procs: int
    commits: int
    rate: float
    p50_us: float
    p99_us: float
    retries_per_commit: float
    lost: int | None
    corrupt: bool
    errors: int
    error_sample: str
    lat_sample: list[float] = field(default_factory=list)
    lost_of: int | None = None  # commits of the repetition the `lost` figure comes from
    module_file: str = ""  # where the workers imported fencedstate from (fencedstate rows)


def run_procs(
    op_cls: type[Op],
    root: Path,
    mode: str,
    procs: int,
    duration: float,
    op_kwargs: dict[str, Any] | None = None,
    timeout: float = 600.0,
    ctx: Any = CTX,
) -> list[WorkerResult]:
    """Start `procs` processes, release them together, run `duration` s, collect results."""
    barrier = ctx.Barrier(procs + 1)
    out = ctx.Queue()
    ps = [
        ctx.Process(
            target=_worker,
            args=(op_cls, str(root), mode, i, duration, barrier, out, op_kwargs or {}),
            daemon=True,
        )
        for i in range(procs)
    ]
    results: dict[int, WorkerResult] = {}
    try:
        for p in ps:
            p.start()
        with contextlib.suppress(Exception):  # broken barrier: a worker failed its setup
            barrier.wait(timeout=300)
        deadline = time.monotonic() + duration + timeout
        while len(results) < procs:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{op_cls.__name__} {mode} P={procs}: workers hung")
            idx, d = out.get(timeout=left)
            results[idx] = WorkerResult(**d)
        for p in ps:
            p.join(timeout=60)
    finally:
        for p in ps:
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
    return [results[i] for i in range(procs)]


def summarize(
    name: str,
    mode: str,
    procs: int,
    workers: list[WorkerResult],
    stored: int | None,
    corrupt: bool,
) -> RunResult:
    commits = sum(w.commits for w in workers)
    ok = [w for w in workers if w.commits]
    span = (max(w.end for w in ok) - min(w.start for w in ok)) if ok else 0.0
    lat = sorted(x for w in workers for x in w.lat_us)
    retries = sum(w.retries for w in workers)
    errors = sum(w.errors for w in workers)
    sample = next((w.error_sample for w in workers if w.error_sample), "")
    lost = None if stored is None else commits - stored
    if corrupt:
        lost = commits
    step = max(1, len(lat) // 2000)
    files = sorted({w.module_file for w in workers if w.module_file})
    return RunResult(
        approach=name,
        mode=mode,
        procs=procs,
        commits=commits,
        rate=commits / span if span > 0 else 0.0,
        p50_us=pct(lat, 0.50),
        p99_us=pct(lat, 0.99),
        retries_per_commit=retries / commits if commits else float("nan"),
        lost=lost,
        corrupt=corrupt,
        errors=errors,
        error_sample=sample,
        lat_sample=lat[::step],
        module_file=", ".join(files),
    )


@contextlib.contextmanager
def _ac_coordinator(root: Path) -> Iterator[None]:
    ready, stop = CTX.Event(), CTX.Event()
    host = CTX.Process(target=ac_host, args=(str(root), ready, stop), daemon=True)
    host.start()
    try:
        if not ready.wait(120):
            raise RuntimeError("agent-coherence coordinator did not start in 120 s")
        yield
    finally:
        stop.set()
        host.join(timeout=30)
        if host.is_alive():
            host.kill()
            host.join(timeout=10)


def run_config(
    a: Approach,
    mode: str,
    procs: int,
    duration: float,
    work: Path,
    baseline: str | None = None,
) -> RunResult:
    """One repetition of one configuration. `baseline` is the --baseline SRC: baseline rows
    import fencedstate from it (setup, workers and final), fencedstate rows must not."""
    root = Path(tempfile.mkdtemp(prefix=f"{short_name(a.name)[:20]}-", dir=work))
    kwargs: dict[str, Any] = {}
    ctx: Any = CTX
    if a.baseline_of is not None:
        if baseline is None:
            raise ValueError(f"{a.name} needs --baseline SRC")
        kwargs, ctx = {"src": baseline}, SPAWN
    elif baseline is not None and issubclass(a.op, FencedState):
        # the rows compared with the baseline start their workers the same way (spawn)
        kwargs, ctx = {"forbid_src": baseline}, SPAWN
    try:
        if a.setup:
            if a.baseline_of is not None:
                in_src(str(baseline), a.setup, root, mode, procs)
            else:
                a.setup(root, mode, procs)
        host = _ac_coordinator(root) if a.op is AgentCoherence else contextlib.nullcontext()
        with host:
            workers = run_procs(a.op, root, mode, procs, duration, kwargs, ctx=ctx)
        if baseline is not None and issubclass(a.op, FencedState):
            for w in workers:  # the workers checked it; check again what they reported
                ok = under(w.module_file, baseline) if w.module_file else False
                if ok != (a.baseline_of is not None):
                    raise RuntimeError(
                        f"{a.name}: a worker imported fencedstate from "
                        f"{w.module_file or '?'} ({w.error_sample or 'no error'})"
                    )
        stored: int | None = None
        corrupt = False
        if a.final:
            try:
                if a.baseline_of is not None:
                    stored = in_src(str(baseline), a.final, root, mode, procs)
                else:
                    stored = a.final(root, mode, procs)
            except (ValueError, KeyError):
                corrupt = True
        return summarize(a.name, mode, procs, workers, stored, corrupt)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def median_run(runs: list[RunResult]) -> RunResult:
    """The repetition with the median commit rate; lost updates and errors are the
    worst seen over all repetitions (a single lost update anywhere must show)."""
    ordered = sorted(runs, key=lambda r: r.rate)
    med = ordered[(len(ordered) - 1) // 2]
    checked = [r for r in runs if r.lost is not None]
    worst = max(checked, key=lambda r: r.lost or 0) if checked else None
    return RunResult(
        **{
            **asdict(med),
            "lost": worst.lost if worst else None,
            "lost_of": worst.commits if worst else None,
            "corrupt": any(r.corrupt for r in runs),
            "errors": max(r.errors for r in runs),
            "error_sample": next((r.error_sample for r in runs if r.error_sample), ""),
        },
    )


def rep_order(
    configs: list[tuple[Approach, str, int]], rep: int
) -> list[tuple[Approach, str, int]]:
    """The configurations of one repetition: each baseline configuration runs right next to
    the one it repeats (baseline second in even repetitions, first in odd ones), so a
    before/after pair sees the same background load."""
    base = {(a.baseline_of, m, p): (a, m, p) for a, m, p in configs if a.baseline_of}
    order: list[tuple[Approach, str, int]] = []
    for a, m, p in configs:
        if a.baseline_of:
            if (a.baseline_of, m, p) not in {(x.name, y, z) for x, y, z in configs}:
                order.append((a, m, p))  # its counterpart is not run (--only)
            continue
        pair = base.get((a.name, m, p))
        if pair is None:
            order.append((a, m, p))
        else:
            order += [(a, m, p), pair] if rep % 2 == 0 else [pair, (a, m, p)]
    return order

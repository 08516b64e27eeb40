"""--profile: interleaved micro-timings of the steps of one fencedstate commit and
pyinstrument call trees (profile_*.txt)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from peers.ops import KEY, close_store, fs_open
from peers.runner import pct


def _interleaved(fns: dict[str, Callable[[], object]], n: int) -> dict[str, float]:
    """p50 (us) of each fn, calls interleaved round-robin so every fn sees the same noise."""
    lat: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(n):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            lat[k].append((time.perf_counter() - t0) * 1e6)
    return {k: pct(sorted(v), 0.5) for k, v in lat.items()}


def profile_commit_path(work: Path, out: Path, n: int, log: Callable[[str], None]) -> list[str]:
    """Cost breakdown of one commit (interleaved micro-timings) and pyinstrument profiles of
    durable put, durability="none" put and get; profiles go to out/profile_*.txt."""
    import fcntl

    import filelock

    root = Path(tempfile.mkdtemp(prefix="profile-", dir=work))
    lines: list[str] = []
    try:
        durable, fast = fs_open(root / "d", None), fs_open(root / "n", "none")
        ver = {
            "d": durable.put(KEY, {"n": 0}, expected_version=0).version,
            "n": fast.put(KEY, {"n": 0}, expected_version=0).version,
        }

        def put_d() -> None:
            ver["d"] = durable.put(KEY, {"n": 1}, expected_version=ver["d"]).version

        def put_n() -> None:
            ver["n"] = fast.put(KEY, {"n": 1}, expected_version=ver["n"]).version

        raw_fd = os.open(root / "raw.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        line = (json.dumps({"n": 0, "pad": "x" * 200}) + "\n").encode()
        flk = filelock.FileLock(str(root / "probe.lock"), thread_local=False)
        lock_fd = os.open(root / "probe2.lock", os.O_RDWR | os.O_CREAT, 0o600)

        def flock_cycle() -> None:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            fcntl.flock(lock_fd, fcntl.LOCK_UN)

        def filelock_cycle() -> None:
            flk.acquire()
            flk.release()

        def raw_fsync() -> None:
            os.write(raw_fd, line)
            os.fsync(raw_fd)

        def raw_fdatasync() -> None:
            os.write(raw_fd, line)
            os.fdatasync(raw_fd)

        p50 = _interleaved(
            {
                "fencedstate put, durable (whole call)": put_d,
                "raw append + fsync": raw_fsync,
                "raw append + fdatasync": raw_fdatasync,
                "fencedstate put, durability=none (whole call)": put_n,
                "fencedstate get (whole call)": lambda: fast.get(KEY),
                "filelock.FileLock acquire+release (uncontended)": filelock_cycle,
                "fcntl.flock LOCK_EX+LOCK_UN on a kept-open fd": flock_cycle,
            },
            n,
        )
        os.close(raw_fd)
        os.close(lock_fd)
        lines.append("| step (interleaved, 1 process) | p50 us |")
        lines.append("|---|---:|")
        lines += [f"| {k} | {v:,.1f} |" for k, v in p50.items()]
        log("profile p50s: " + "; ".join(f"{k}: {v:,.0f} us" for k, v in p50.items()))
        try:
            from pyinstrument import Profiler
        except ImportError:
            lines.append("\n(pyinstrument not installed: no call-tree profiles)")
            return lines
        for name, fn in (
            ("put_durable", put_d),
            ("put_none", put_n),
            ("get", lambda: fast.get(KEY)),
        ):
            prof = Profiler(interval=0.0002)
            prof.start()
            for _ in range(n):
                fn()
            prof.stop()
            (out / f"profile_{name}.txt").write_text(
                prof.output_text(unicode=False, color=False, show_all=False)
            )
        lines.append(
            "\nCall trees (pyinstrument): `profile_put_durable.txt`, "
            "`profile_put_none.txt`, `profile_get.txt`."
        )
        close_store(durable)
        close_store(fast)
        return lines
    finally:
        shutil.rmtree(root, ignore_errors=True)

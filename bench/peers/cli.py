"""The command line: arguments, the run loop over repetitions, writing the report."""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from peers import BENCH, REPO
from peers.approaches import ALL_APPROACHES, APPROACHES, short_name
from peers.baseline import under
from peers.costkey import cost_per_key
from peers.ops import AC_MODULE, AC_PIN, AgentCoherence, FencedState
from peers.plots import plot
from peers.probe import git_describe, machine_block, machine_info
from peers.profiling import profile_commit_path
from peers.readscale import read_and_scale
from peers.report import before_after, lost_cell, render
from peers.runner import RunResult, median_run, rep_order, run_config
from peers.targets import targets


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python bench/peers",
        description="Benchmark fencedstate against the peers a user would otherwise pick.",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="short run (under 2 minutes): 1 rep, short durations, smaller stores",
    )
    ap.add_argument("--procs", help="comma-separated process counts (default 1,2,4,8)")
    ap.add_argument("--reps", type=int, help="repetitions per configuration (default 3)")
    ap.add_argument("--duration", type=float, help="seconds per repetition")
    ap.add_argument("--only", help="comma-separated approach ids (substring match)")
    ap.add_argument("--read-keys", help="store sizes for the read test (default 10,100000)")
    ap.add_argument(
        "--journal", help="journal lengths for the scale test (default 1,30000,1000000)"
    )
    ap.add_argument(
        "--cost-keys",
        type=int,
        help="keys of 100-byte values for the cost-per-key rows (default 100000; 0 skips)",
    )
    ap.add_argument("--workdir", help="directory on the disk under test (default: a temp dir)")
    ap.add_argument(
        "--out",
        default=str(BENCH / "results"),
        help="where the report and plots go; the raw JSON goes to OUT/raw/peers.json",
    )
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument(
        "--render", metavar="JSON", help="only re-render peers.md and the plots from a peers.json"
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="also time the steps of a fencedstate commit and write pyinstrument "
        "profiles (profile_*.txt)",
    )
    ap.add_argument(
        "--baseline",
        metavar="SRC",
        help="a fencedstate src/ tree (e.g. a checkout of the last release): also run the "
        "fencedstate rows with the package imported from SRC, and print a before/after table",
    )
    ap.add_argument(
        "--no-install",
        action="store_true",
        help="do not pip install the optional agent-coherence peer when missing",
    )
    args = ap.parse_args(argv)
    q = args.quick

    def counts(flag: str, given: str | None, default: str) -> list[int]:
        try:
            values = [int(x) for x in (given or default).split(",")]
        except ValueError:
            values = []
        if not values or (flag != "--procs" and any(v < 1 for v in values)):
            ap.error(f"{flag} must be whole numbers >= 1, comma-separated, not {given!r}")
        return values

    args.procs = counts("--procs", args.procs, "1,4,8" if q else "1,2,4,8")
    args.reps = args.reps or (1 if q else 3)
    args.duration = args.duration or (0.5 if q else 1.5)
    args.read_keys = counts("--read-keys", args.read_keys, "10,2000" if q else "10,100000")
    args.journal = counts("--journal", args.journal, "1,10000" if q else "1,30000,1000000")
    if args.render is not None and not Path(args.render).is_file():
        ap.error(f"--render {args.render}: no such file")
    if args.cost_keys is None:
        args.cost_keys = 2000 if q else 100_000
    if args.cost_keys < 0:
        ap.error("--cost-keys must be >= 0")
    if any(p < 1 for p in args.procs) or args.reps < 1 or args.duration <= 0:
        ap.error("--procs, --reps and --duration must be positive")
    if args.baseline is not None:
        src = Path(args.baseline).resolve()
        if not (src / "fencedstate" / "__init__.py").is_file():
            ap.error(
                f"--baseline {args.baseline}: no fencedstate package in it (want SRC/fencedstate)"
            )
        if under(str(REPO / "src"), str(src)):
            ap.error(f"--baseline {args.baseline} is this checkout's own src/ tree")
        args.baseline = str(src)
    if args.only is not None:  # a typo would run nothing and write an empty peers.md
        ids = [short_name(a.name) for a in (ALL_APPROACHES if args.baseline else APPROACHES)]
        for o in args.only.split(","):
            if o.strip() and not any(o.strip() in i for i in ids):
                ap.error(f"--only {o.strip()} matches no approach; ids: {', '.join(ids)}")
    return args


def _importable(mod: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        if not args.no_plots:
            plot(saved, out)
        (out / "peers.md").write_text(render(saved))
        return 0
    work = Path(tempfile.mkdtemp(prefix="fsbench-", dir=args.workdir))
    report: dict[str, Any] = {
        "config": {
            "procs": args.procs,
            "reps": args.reps,
            "duration": args.duration,
            "command": "python bench/peers " + " ".join(sys.argv[1:] if argv is None else argv),
        },
        "machine": machine_info(work),
        "runs": [],
        "skipped": [],
        "reads": [],
        "scale": [],
        "cost": [],
    }
    if args.baseline:
        report["config"]["baseline"] = {"src": args.baseline, "git": git_describe(args.baseline)}
    wanted = [
        a
        for a in (ALL_APPROACHES if args.baseline else APPROACHES)
        if not args.only
        or any(o.strip() and o.strip() in short_name(a.name) for o in args.only.split(","))
    ]
    t_start = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t_start:7.1f}s] {msg}", flush=True)

    if (
        any(a.op is AgentCoherence for a in wanted)
        and not args.no_install
        and not _importable(AC_MODULE)
    ):
        # the optional peer is installed for the benchmark only, never a project dependency
        log(f"installing the optional peer: pip install {AC_PIN}")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", AC_PIN], check=False)
        importlib.invalidate_caches()
        report["machine"] = machine_info(work)  # now names the installed peer's version

    try:
        log(machine_block(report["machine"]).strip())
        runnable = []
        for a in wanted:
            if a.needs and not _importable(a.needs):
                why = f"{a.name}: module `{a.needs}` is not importable" + (
                    f" (`pip install {AC_PIN}` failed or --no-install was given)"
                    if a.op is AgentCoherence
                    else ""
                )
                report["skipped"].append(why)
                log("skip " + why)
            else:
                runnable.append(a)
        # Repetitions are interleaved (rep 1 of everything, then rep 2, ...) so that every
        # approach sees the same mix of background load on a shared machine.
        configs = [(a, mode, p) for a in runnable for mode in a.modes for p in args.procs]
        reps: dict[tuple[str, str, int], list[RunResult]] = {}
        failed: set[tuple[str, str, int]] = set()
        shown: set[str] = set()
        for rep in range(args.reps):
            for a, mode, p in rep_order(configs, rep):
                cid = (a.name, mode, p)
                if cid in failed:
                    continue
                try:
                    r = run_config(a, mode, p, args.duration, work, args.baseline)
                except Exception as exc:
                    why = f"{a.name} {mode} P={p}: {type(exc).__name__}: {exc}"
                    report["skipped"].append(why[:400])
                    log("FAILED " + why)
                    failed.add(cid)
                    continue
                reps.setdefault(cid, []).append(r)
                log(
                    f"rep {rep + 1}/{args.reps} {a.name:34s} {mode:11s} P={p}: "
                    f"{r.rate:10,.0f}/s p50 {r.p50_us / 1000:7.2f} ms "
                    f"p99 {r.p99_us / 1000:7.2f} ms retries/commit "
                    f"{r.retries_per_commit:5.2f} lost {lost_cell(r)} errors {r.errors}"
                )
                if r.module_file and a.name not in shown:
                    shown.add(a.name)
                    log(f"    {a.name}: workers imported fencedstate from {r.module_file}")
        for a, mode, p in configs:
            if (a.name, mode, p) in reps:
                report["runs"].append(asdict(median_run(reps[(a.name, mode, p)])))
        if any(a.op is FencedState and not a.baseline_of for a in wanted) and _importable(
            "fencedstate.file.filestore"
        ):
            try:
                read_and_scale(args, work, report, log)
            except Exception as exc:  # keep the commit tables of a long run
                why = f"reads/scale: {type(exc).__name__}: {exc}"[:400]
                report["skipped"].append(why)
                log("FAILED " + why)
            if args.cost_keys:
                try:
                    report["cost"] = cost_per_key(
                        args.cost_keys, work, log, sqlite=any("SQLite" in a.name for a in wanted)
                    )
                except Exception as exc:
                    why = f"cost per key: {type(exc).__name__}: {exc}"[:400]
                    report["skipped"].append(why)
                    log("FAILED " + why)
        if args.profile and _importable("fencedstate.file.filestore"):
            report["profile"] = profile_commit_path(work, out, 300 if args.quick else 2000, log)
        report["targets"] = targets(report)
        report["before_after"] = before_after(report)
        raw = out / "raw"  # every sample: git-ignored, never committed
        raw.mkdir(exist_ok=True)
        (raw / "peers.json").write_text(json.dumps(report, indent=1))
        if not args.no_plots and report["runs"]:
            plot(report, out)
        md = render(report)
        (out / "peers.md").write_text(md)
        log(f"wrote {out / 'peers.md'}; its targets and before/after tables:")
        tail = md[md.find("\n## Issue ") :].split("\nPlots: ")[0]
        print(tail.replace(machine_block(report["machine"]) + "\n", ""), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0

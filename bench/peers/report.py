"""peers.md: the markdown tables of one report (every table below its machine line)."""

from __future__ import annotations

from typing import Any

from peers.approaches import (
    ALL_APPROACHES,
    BASE_DURABLE,
    BASE_NONE,
    BASELINE_APPROACHES,
    FS_DURABLE,
    FS_NONE,
)
from peers.ops import MODES
from peers.probe import machine_block
from peers.runner import RunResult


def _f(x: float | None, nd: int = 0) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:,.{nd}f}"


def lost_cell(r: RunResult) -> str:
    if r.corrupt:
        return "**file corrupted**"
    if r.lost is None:
        return "n/a"
    if not r.lost:
        return "0"
    if r.lost_of is None:  # results written before lost_of existed
        return f"{r.lost:,} (worst repetition)"
    pct = 100.0 * r.lost / r.lost_of if r.lost_of else 0.0
    return f"{r.lost:,} of {r.lost_of:,} ({pct:.0f}%)"


def _section(
    info: dict[str, str], title: str, header: str, align: str, rows: list[str]
) -> list[str]:
    """One "## title" section: the machine line, then a table."""
    return [f"\n## {title}\n", machine_block(info), header, align, *rows]


def _commit_rates(info: dict[str, str], by: dict[Any, RunResult], procs: list[int]) -> list[str]:
    out: list[str] = []
    for mode in MODES:
        what = (
            "P processes read-modify-write ONE key (increment a counter, retry on conflict)"
            if mode == "contended"
            else "P processes, one key each (versioned write of its own key)"
        )
        rows = []
        for a in ALL_APPROACHES:
            if mode not in a.modes or not any((a.name, mode, p) in by for p in procs):
                continue
            cells = [
                _f(by[(a.name, mode, p)].rate) if (a.name, mode, p) in by else "-" for p in procs
            ]
            rows.append(f"| {a.name} | {a.durable} | " + " | ".join(cells) + " |")
        out += _section(
            info,
            f"{mode.capitalize()}: commits/s ({what})",
            "| approach | durable on power loss? | " + " | ".join(f"P={p}" for p in procs) + " |",
            "|---|---|" + "---:|" * len(procs),
            rows,
        )
    return out


def _all_figures(info: dict[str, str], by: dict[Any, RunResult], procs: list[int]) -> list[str]:
    rows = []
    for a in ALL_APPROACHES:
        for mode in MODES:
            for p in procs:
                r = by.get((a.name, mode, p))
                if r is None:
                    continue
                sample = r.error_sample[:80].replace("|", "/").replace("\n", " ")
                err = f"{r.errors:,} ({sample})" if r.errors else "0"
                rows.append(
                    f"| {a.name} | {mode} | {p} | {_f(r.rate)} | {_f(r.p50_us / 1000, 2)} | "
                    f"{_f(r.p99_us / 1000, 2)} | {_f(r.retries_per_commit, 2)} | "
                    f"{lost_cell(r)} | {err} |"
                )
    return _section(
        info,
        "All figures",
        "| approach | mode | P | commits/s | p50 ms | p99 ms | retries/commit | "
        "lost updates | errors |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
        rows,
    )


def _reads(info: dict[str, str], reads: list[dict[str, Any]]) -> list[str]:
    rows = [
        f"| {r['keys']:,} | {r['gets']:,} | {_f(r['p50_us'], 1)} | "
        f"{_f(r['p99_us'], 1)} | {_f(r['build_s'], 1)} s | "
        f"{_f(r.get('sqlite_p50_us'), 1)} / {_f(r.get('sqlite_p99_us'), 1)} |"
        for r in reads
    ]
    return _section(
        info,
        "Reads: fencedstate `get` on a warm store, 1 process",
        "| keys in store | gets | p50 us | p99 us | store built in | "
        "SQLite WAL point SELECT p50 / p99 us (context) |",
        "|---:|---:|---:|---:|---:|---:|",
        rows,
    )


def _scale(info: dict[str, str], scale: list[dict[str, Any]]) -> list[str]:
    rows = [
        f"| {s['label']} | {_f(s['rate'])} | {_f(s['p50_us'] / 1000, 2)} | "
        f"{_f(s['p99_us'] / 1000, 2)} | {s['how']} |"
        for s in scale
    ]
    return _section(
        info,
        "Scale: durable fencedstate commits (`put` with expected_version), 1 process",
        "| store shape | commits/s | p50 ms | p99 ms | how it was built |",
        "|---|---:|---:|---:|---|",
        rows,
    )


def _cost(info: dict[str, str], cost: list[dict[str, Any]]) -> list[str]:
    rows = [
        f"| {c['approach']} | {c['keys']:,} | {c['files']:,} ({_f(c['files_per_key'], 2)}) | "
        f"{_f(c['bytes_per_key'])} | {c['fs_block']:,} | "
        f"{_f(c['bytes_per_key'] / c['fs_block'], 2)} x | {_f(c['keys_s'] * 1000, 1)} | "
        f"{_f(c['prefix_s'] * 1000, 2)} ({c['prefix_n']:,} keys) | "
        f"{_f(c['prefix_s'] / c['keys_s'], 3) if c['keys_s'] else '-'} | "
        f"{_f(c['put_rate'])} | {c['how']} |"
        for c in cost
    ]
    return _section(
        info,
        "Cost per key: N keys of 100-byte values (du-style disk use, 1 process)",
        "| store | keys | files (per key) | disk bytes per key "
        "| fs block B | disk per key / block | keys() ms | keys(prefix 1 %) ms | prefix / all "
        "| put/s while creating (not durable) | how |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        rows,
    )


def _targets(info: dict[str, str], found: list[dict[str, str]]) -> list[str]:
    """One table per issue, in the order the targets come."""
    out: list[str] = []
    for issue in dict.fromkeys(t.get("issue", "8") for t in found):
        rows = [
            f"| {t['target']} | {t['measured']} | {t['met']} |"
            for t in found
            if t.get("issue", "8") == issue
        ]
        title = f"Issue {issue} targets (ratios from this run)"
        out += _section(info, title, "| target | measured | met? |", "|---|---|---|", rows)
    return out


def _before_after(info: dict[str, str], base: dict[str, str] | None, pairs: list[Any]) -> list[str]:
    rows = [
        f"| {b['durability']} | {b['mode']} | {b['procs']} | {_f(b['before_rate'])} | "
        f"{_f(b['after_rate'])} | {_f(b['ratio'], 2)} x | "
        f"{_f(b['before_p99_us'] / 1000, 2)} | {_f(b['after_p99_us'] / 1000, 2)} | "
        f"{_f(b['before_lost'])} / {_f(b['after_lost'])} |"
        for b in pairs
    ]
    return _section(
        info,
        f"Before/after: baseline `{base['src'] if base else '?'}` "
        f"(git {base['git'] if base else '?'}) vs this tree, same run",
        "| durability | mode | P | before commits/s | after commits/s | after/before | "
        "p99 before ms | p99 after ms | lost before / after |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
        rows,
    )


def render(report: dict[str, Any]) -> str:
    """peers.md of one report."""
    info = report["machine"]
    cfg = report["config"]
    by = {(r.approach, r.mode, r.procs): r for r in (RunResult(**x) for x in report["runs"])}
    procs = cfg["procs"]
    out = [
        "# fencedstate vs peers\n",
        f"Command: `{cfg['command']}`; {cfg['reps']} repetitions per configuration, median "
        f"kept (by commit rate); {cfg['duration']} s per repetition; real OS processes "
        "(multiprocessing, fork). Lost updates and errors are the worst over all "
        "repetitions.\n",
        machine_block(info),
    ]
    base = cfg.get("baseline")
    if base:
        out.append(
            f"Baseline (--baseline): fencedstate imported from `{base['src']}` "
            f'(git {base["git"]}) in the workers of the rows named "{BASE_DURABLE}" and '
            f'"{BASE_NONE}"; those rows run the same workload as "{FS_DURABLE}" and '
            f'"{FS_NONE}", in fresh (spawn) processes, interleaved with them.\n'
        )
    out += _commit_rates(info, by, procs)
    out += _all_figures(info, by, procs)
    out += [f"\nNot measured: {note}" for note in report.get("skipped", [])]
    if report.get("reads"):
        out += _reads(info, report["reads"])
    if report.get("scale"):
        out += _scale(info, report["scale"])
    if report.get("cost"):
        out += _cost(info, report["cost"])
    out += _targets(info, report.get("targets", []))
    pairs = before_after(report)
    if pairs:
        out += _before_after(info, base, pairs)
    if report.get("profile"):
        out += ["\n## Where a fencedstate commit spends its time\n", machine_block(info)]
        out += report["profile"]
    out.append("\nPlots: `commit_rate_vs_processes.png`, `latency_distribution.png`.\n")
    return "\n".join(out) + "\n"


def before_after(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (durability, mode, P): the --baseline row next to this tree's row."""
    by = {(r["approach"], r["mode"], r["procs"]): r for r in report["runs"]}
    rows: list[dict[str, Any]] = []
    for a in BASELINE_APPROACHES:
        for mode in MODES:
            for p in report["config"]["procs"]:
                old, new = by.get((a.name, mode, p)), by.get((a.baseline_of, mode, p))
                if old is None or new is None:
                    continue
                rows.append(
                    {
                        "durability": "default (durable)" if a.name == BASE_DURABLE else "none",
                        "mode": mode,
                        "procs": p,
                        "before_rate": old["rate"],
                        "after_rate": new["rate"],
                        "ratio": new["rate"] / old["rate"] if old["rate"] else float("nan"),
                        "before_p99_us": old["p99_us"],
                        "after_p99_us": new["p99_us"],
                        "before_lost": old["lost"],
                        "after_lost": new["lost"],
                    }
                )
    return rows

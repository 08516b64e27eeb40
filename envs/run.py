"""Run the isolated test environments of envs/matrix.toml (called by `make test`).

For each row: check its extras exist in pyproject.toml and its test paths exist (else the row
fails), create .envs/<name> with the project's pinned uv (recreated when the row or pyproject.toml
changes), install fencedstate with only the row's extras + dev at the newest releases its
constraints allow (``--upgrade`` every run), run pytest on the row's tests, and print one line:
name, key package versions, result. pytest's "no tests ran" (exit 5) is a failure. Installs run
two at a time ahead of the (sequential) test runs. The last line is ``envs: N passed, M failed``
(tests, plus one failure per row that could not run). Exit status 0 only if every row passed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "envs" / "matrix.toml"
ENVS = ROOT / ".envs"
COLUMNS = {"extras", "constraints", "tests", "show", "coinstalled"}


@dataclass
class Row:
    """One environment: its name and the matrix columns."""

    name: str
    extras: list[str]
    tests: list[str]
    constraints: list[str] = field(default_factory=list)
    show: list[str] = field(default_factory=list)
    coinstalled: bool = True

    @property
    def path(self) -> Path:
        return ENVS / self.name

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def fingerprint(self, pyproject: str) -> str:
        row = json.dumps([self.extras, self.constraints], sort_keys=True)
        return hashlib.sha256((row + pyproject).encode()).hexdigest()


@dataclass
class Outcome:
    """What happened to one row."""

    ok: bool
    detail: str
    passed: int = 0
    failed: int = 0
    versions: str = ""
    log: Path | None = None


def load(path: Path = MATRIX) -> list[Row]:
    """The matrix rows, in file order; an unknown column or a missing one is an error."""
    doc = tomllib.loads(path.read_text())
    rows = []
    for name, cols in doc.get("env", {}).items():
        unknown = set(cols) - COLUMNS
        if unknown or "extras" not in cols or "tests" not in cols:
            raise SystemExit(f"{path}: env {name!r}: needs extras and tests; unknown {unknown}")
        rows.append(Row(name=name, **cols))
    return rows


def problems(row: Row, extras: set[str]) -> list[str]:
    """What makes ``row`` impossible to run as written (missing extras or test paths)."""
    out = [f"extra {e!r} is not in pyproject.toml" for e in row.extras if e not in extras]
    out += [f"test path {t} does not exist" for t in row.tests if not (ROOT / t).exists()]
    return out


def _uv() -> str:
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        raise SystemExit(f"{uv} not found: the dev extra installs the pinned uv (make test)")
    return str(uv)


def install(row: Row, pyproject: str) -> tuple[bool, float, str]:
    """Create or refresh the row's environment; (ok, seconds, uv's output on failure)."""
    start = time.monotonic()
    stamp = row.path / ".fingerprint"
    fingerprint = row.fingerprint(pyproject)
    if row.path.exists() and (not stamp.exists() or stamp.read_text() != fingerprint):
        shutil.rmtree(row.path)
    uv = _uv()
    steps = []
    if not row.python.exists():
        steps.append([uv, "venv", "-q", "--python", sys.executable, str(row.path)])
    spec = f"{ROOT}[{','.join([*row.extras, 'dev'])}]"
    steps.append(
        [uv, "pip", "install", "-q", "--upgrade", "--python", str(row.python), "-e", spec,
         *row.constraints]
    )  # fmt: skip
    for cmd in steps:
        for attempt in (1, 2):  # a second try for a registry hiccup; a real conflict fails twice
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if r.returncode == 0:
                break
            if attempt == 2:
                return False, time.monotonic() - start, (r.stdout + r.stderr)[-3000:]
    stamp.write_text(fingerprint)
    return True, time.monotonic() - start, ""


def versions(row: Row) -> str:
    """``pkg 1.2.3, ...`` for the row's ``show`` packages, as installed in its environment."""
    code = (
        "import sys, importlib.metadata as m\n"
        "for p in sys.argv[1:]:\n"
        "    try: print(p, m.version(p))\n"
        "    except m.PackageNotFoundError: print(p, 'missing')\n"
    )
    r = subprocess.run([str(row.python), "-c", code, *row.show], capture_output=True, text=True)
    return ", ".join(r.stdout.split("\n")[:-1]) if r.returncode == 0 else "?"


def _count(word: str, text: str) -> int:
    return sum(int(n) for n in re.findall(rf"(\d+) {word}", text))


def run_tests(row: Row) -> Outcome:
    """pytest on the row's tests in its environment; exit 5 (no tests ran) is a failure."""
    log = row.path / "pytest.log"
    env = dict(os.environ, PATH=f"{row.path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("VIRTUAL_ENV", None)
    start = time.monotonic()
    with log.open("w") as out:
        code = subprocess.call(
            [str(row.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *row.tests],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
    summary = lines[-1].strip("= ") if lines else ""
    summary = re.sub(r" in [\d.]+s( \([\d:]+\))?$", "", summary)  # our own clock below
    passed = _count("passed", summary)
    failed = _count("failed", summary) + _count("errors?", summary)
    took = f"{time.monotonic() - start:.0f}s"
    if code == 5:
        return Outcome(False, f"FAILED: pytest ran no tests (exit 5), tests {took}", 0, 1, log=log)
    if code != 0:
        detail = f"FAILED: {summary} (exit {code}), tests {took}"
        return Outcome(False, detail, passed, max(failed, 1), log=log)
    return Outcome(True, f"{summary}, tests {took}", passed, 0, log=log)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="rows to run (default: all)")
    ap.add_argument(
        "--coinstalled-ignores",
        action="store_true",
        help="print pytest --ignore options for tests that cannot run in the co-installed .venv",
    )
    a = ap.parse_args(argv)
    rows = load()
    if a.coinstalled_ignores:
        print(" ".join(f"--ignore={t}" for r in rows if not r.coinstalled for t in r.tests))
        return 0
    unknown = set(a.names) - {r.name for r in rows}
    if unknown:
        raise SystemExit(f"no such environment(s) {sorted(unknown)} in {MATRIX}")
    rows = [r for r in rows if not a.names or r.name in a.names]
    pyproject = (ROOT / "pyproject.toml").read_text()
    extras = set(tomllib.loads(pyproject)["project"]["optional-dependencies"])
    ENVS.mkdir(exist_ok=True)
    print(f"== isolated environments ({len(rows)}, envs/matrix.toml; logs in .envs/NAME/)")
    width = max(len(r.name) for r in rows)
    passed = failed = 0
    bad: list[str] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: dict[str, Future[tuple[bool, float, str]]] = {}
        for r in rows:
            if not problems(r, extras):
                pending[r.name] = pool.submit(install, r, pyproject)
        for r in rows:
            found = problems(r, extras)
            if found:
                res = Outcome(False, "FAILED: " + "; ".join(found), 0, 1)
            else:
                ok, secs, err = pending[r.name].result()
                if not ok:
                    res = Outcome(False, f"FAILED: install ({secs:.0f}s)", 0, 1)
                    print(err, file=sys.stderr)
                else:
                    res = run_tests(r)
                    res.detail += f", install {secs:.0f}s"
                    res.versions = versions(r)
            passed, failed = passed + res.passed, failed + res.failed
            mark = "ok  " if res.ok else "FAIL"
            shown = f"{res.versions or '-':<44}"
            print(f"{mark} {r.name:<{width}}  {shown}  {res.detail}", flush=True)
            if not res.ok:
                bad.append(r.name)
                if res.log is not None:
                    tail = res.log.read_text().splitlines()[-40:]
                    print("\n".join(f"     | {ln}" for ln in tail), flush=True)
    if bad:
        print(f"failed environments: {', '.join(bad)}")
    print(f"envs: {passed} passed, {failed} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

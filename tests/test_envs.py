"""envs/run.py, the isolated-environment runner behind `make test`: it never passes silently."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("envs_run", ROOT / "envs" / "run.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["envs_run"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_matrix_rows_are_well_formed() -> None:
    run = _runner()
    rows = run.load()
    names = [r.name for r in rows]
    assert len(names) == len(set(names))
    assert {"mcp1", "mcp2", "langgraph", "crewai", "pydantic-ai", "pydantic-graph"} <= set(names)
    for r in rows:
        assert r.extras and r.tests and r.show, r.name
        assert all(t.startswith("tests/") for t in r.tests), r.name
    mcp = {r.name: r.constraints for r in rows if r.name.startswith("mcp")}
    assert mcp == {"mcp1": ["mcp>=1,<2"], "mcp2": ["mcp>=2,<3"]}


def test_a_missing_extra_or_test_path_is_a_failure_not_a_skip() -> None:
    run = _runner()
    row = run.Row(name="x", extras=["mcp", "no-such-extra"], tests=["tests/no_such_dir"])
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    found = run.problems(row, extras)
    assert found == [
        "extra 'no-such-extra' is not in pyproject.toml",
        "test path tests/no_such_dir does not exist",
    ]


def test_no_tests_ran_is_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _runner()
    monkeypatch.setattr(run, "ENVS", tmp_path / ".envs")
    (tmp_path / ".envs" / "empty" / "bin").mkdir(parents=True)
    (tmp_path / ".envs" / "empty" / "bin" / "python").symlink_to(sys.executable)
    empty = tmp_path / "test_nothing.py"
    empty.write_text('"""No tests here."""\n')
    passing = tmp_path / "test_one.py"
    passing.write_text("def test_one() -> None:\n    assert 1 + 1 == 2\n")
    none = run.run_tests(run.Row(name="empty", extras=["mcp"], tests=[str(empty)]))
    assert not none.ok and "pytest ran no tests" in none.detail and none.failed == 1
    one = run.run_tests(run.Row(name="empty", extras=["mcp"], tests=[str(passing)]))
    assert one.ok and one.passed == 1 and one.failed == 0


def test_coinstalled_ignores_name_only_rows_that_cannot_share_the_venv() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "envs" / "run.py"), "--coinstalled-ignores"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    rows = _runner().load()
    assert out == [f"--ignore={t}" for r in rows if not r.coinstalled for t in r.tests]
    assert "--ignore=tests/adapters/pydantic_graph" in out

"""The counts the README (and docs/catalog.md) state match the code (issue 27): core
dependencies, catalog entries and executable ones, TLA+ specs, adapters. Every expected number
is derived from the tree, so a new adapter, backend or entry only needs its README row."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from fencedstate import catalog

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]


def number(text: str) -> int:
    return int(text) if text.isdigit() else WORDS.index(text.lower())


def stated(pattern: str, text: str = README) -> list[int]:
    found = [number(m) for m in re.findall(pattern, text, re.I)]
    assert found, f"the README no longer says {pattern!r}: update this test with it"
    return found


def section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def test_core_dependencies() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert stated(r"\((\w+) small dependencies\)") == [len(deps)]


def test_catalog_entries_and_executable_ones() -> None:
    entries = catalog.load_entries()
    executable = [e for e in entries if any(m.repro for m in e.mitigations)]
    assert stated(r"documents (\d+) ways") == [len(entries)]
    assert stated(r"(\d+) entries are\s+executable") == [len(executable)]
    docs = (ROOT / "docs" / "catalog.md").read_text(encoding="utf-8")
    assert stated(r"(\d+) entries are \*\*executable\*\*", docs) == [len(executable)]
    assert len(list((ROOT / "tests" / "repros").glob("test_*.py"))) >= len(executable)


def test_tla_specs() -> None:
    specs = list((ROOT / "specs").glob("*.tla"))
    assert stated(r"holds (\w+) TLA\+ specs") == [len(specs)]
    for spec in specs:
        assert f"`{spec.stem}`" in section("Model-checked in TLA+")


def test_adapters_table_has_one_row_per_adapter_package() -> None:
    packages = sorted(p.name for p in (ROOT / "adapters").glob("*/fencedstate_*") if p.is_dir())
    rows = [
        line
        for line in section("Framework adapters").splitlines()
        if line.startswith("| ") and not line.startswith(("| framework", "|---"))
    ]
    assert len(rows) == len(packages), (len(rows), packages)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for row in rows:
        for extra in re.findall(r"\.\[([\w-]+)\]", row):
            assert extra in extras, f"README adapter row names a missing extra: {extra}"

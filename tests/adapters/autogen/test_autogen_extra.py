"""The ``autogen`` extra installs only what the adapter, its example and its tests import."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SOURCES = [
    *(ROOT / "adapters" / "autogen").rglob("*.py"),
    *(ROOT / "examples").glob("autogen*.py"),
    *Path(__file__).parent.glob("*.py"),
]


def imported_top_level_modules() -> set[str]:
    """Every top-level module an ``import`` / ``from ... import`` in ``SOURCES`` names."""
    found: set[str] = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_every_distribution_in_the_autogen_extra_is_imported() -> None:
    """pyautogen (0.10: a proxy package, module ``pyautogen``) was listed but never imported."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["autogen"]
    names = [re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0] for req in extra]
    imported = imported_top_level_modules()
    assert {"autogen_agentchat", "autogen_core", "autogen_ext"} <= imported
    unused = [n for n in names if n.replace("-", "_").lower() not in imported]
    assert unused == [], f"the autogen extra installs {unused}, which nothing imports"
    assert "autogen" not in imported  # the 0.2-era package: the adapter uses autogen_* only

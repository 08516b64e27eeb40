"""Helpers shared by the hardening tests (issue 9): real faults, real processes, real files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fencedstate as fs
from fencedstate.file import keylog

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PY = sys.executable


def child_env() -> dict[str, str]:
    """Environment for a child Python that imports this checkout's fencedstate."""
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("LD_PRELOAD", None)
    return env


def require_tool(name: str) -> str:
    """Path of a tool from .ci/deps.d/hardening.sh; a missing one is a broken CI setup."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `bash .ci/deps.d/hardening.sh` (as root)")
    return path


def run(cmd: list[str], timeout: float = 300, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a child to completion (killed on timeout) and return its result."""
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=kw.pop("env", child_env()), **kw
    )  # type: ignore[call-overload]


def check_store_files(root: str) -> dict[str, int]:
    """Every log under ``root`` parses line by line, its last line ends on a newline (blank
    padding may follow), and no temp file or unfinished intent is left. Returns {key: number
    of lines}."""
    data = os.path.join(root, "data")
    lines: dict[str, int] = {}
    for dirpath, _, names in os.walk(data):
        for name in names:
            path = os.path.join(dirpath, name)
            assert not name.endswith(".tmp"), f"temp file left behind: {path}"
            assert name.endswith(".jsonl"), f"stray file in data/: {path}"
            with open(path, "rb") as f:
                raw = f.read()
            body = raw.rstrip(b" ")  # the lines, then nothing but blank padding
            assert body == b"" or body.endswith(b"\n"), f"torn tail left in {path}"
            states = list(keylog.iter_states(path))
            lines[os.path.relpath(path, data)[: -len(".jsonl")]] = len(states)
    txn = os.path.join(root, "txn")
    if os.path.isdir(txn):
        assert os.listdir(txn) == [], f"unfinished intents: {os.listdir(txn)}"
    return lines


__all__ = ["PY", "REPO", "check_store_files", "child_env", "fs", "require_tool", "run"]

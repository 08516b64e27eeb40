"""The machine the figures come from: cores, CPU, filesystem of the work directory, kernel,
Python, SQLite and peer versions, git commit."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import sqlite3
import subprocess
import time
from pathlib import Path

from peers import REPO


def machine_info(work: Path) -> dict[str, str]:
    def sh(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mount = ("?", "?", "?")
    with contextlib.suppress(OSError):
        best = ""
        real = os.path.realpath(work)
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, fstype, opts = line.split()[:4]
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, mount = mnt, (dev, fstype, opts)
    versions = {}
    for dist in ("filelock", "langgraph-checkpoint-sqlite", "agent-coherence", "fencedstate"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "filesystem": f"{sh('stat', '-f', '-c', '%T', str(work))} "
        f"(/proc/mounts: {mount[1]} on {mount[0]}, {mount[2]})",
        "workdir": str(work),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "git": sh("git", "-C", str(REPO), "rev-parse", "--short", "HEAD") or "?",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def machine_block(info: dict[str, str]) -> str:
    return (
        f"Machine: {info['cores']} cores ({info['cpu']}), filesystem {info['filesystem']}, "
        f"kernel {info['kernel']}, Python {info['python']}, SQLite {info['sqlite']}; "
        f"{info['versions']}; git {info['git']}; {info['date']}.\n"
    )


def git_describe(src: str) -> str:
    """Short commit of the checkout `src` lives in, or '?'."""
    try:
        res = subprocess.run(
            ["git", "-C", src, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return res.stdout.strip() or "?"

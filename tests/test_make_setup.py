"""``make test`` sets itself up (issue 27): before pytest it checks the system packages the suite
needs; one that is missing (and cannot be installed: not root, or told not to) stops it with one
line naming it and the command that installs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = {"etcd", "etcdctl", "faketime"}


def _path_without(hidden: set[str], where: Path) -> str:
    """A PATH of one directory linking every program on today's PATH but ``hidden``."""
    where.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = os.path.join(directory, name)
            link = where / name
            if name in hidden or link.exists() or not os.access(target, os.X_OK):
                continue
            link.symlink_to(target)
    return str(where)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FENCEDSTATE_")}
    env.update(extra)
    return env


def _setup(**env: str) -> subprocess.CompletedProcess[str]:
    """scripts/setup-system.sh run as `make test` runs it, under ``_env(**env)``."""
    return subprocess.run(
        ["bash", "scripts/setup-system.sh"],
        cwd=ROOT,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _refused(**env: str) -> str:
    """The one line the check-only set-up prints when it stops (exit 1) under ``env``."""
    done = _setup(**env, FENCEDSTATE_SETUP_NO_INSTALL="1")
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.splitlines()
    return line


def test_setup_passes_when_everything_is_there() -> None:
    done = _setup()
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_make_test_stops_before_pytest_naming_what_is_missing(tmp_path: Path) -> None:
    assert shutil.which("make") is not None
    path = _path_without(HIDDEN, tmp_path / "bin")
    done = subprocess.run(
        # -o: the venv counts as installed; BIN: a pytest that would start fails loudly instead
        ["make", "-o", ".venv/.installed", "-o", ".venv/.core", "BIN=/nonexistent", "test"],
        cwd=ROOT,
        env=_env(PATH=path, FENCEDSTATE_SETUP_NO_INSTALL="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "/nonexistent/python" not in done.stdout + done.stderr  # pytest never started
    [line] = [x for x in done.stderr.splitlines() if x.startswith("make test:")]
    assert line.startswith("make test: missing etcd, faketime; install with: ")
    assert "apt-get install -y --no-install-recommends etcd-server etcd-client faketime" in line


def test_every_tool_the_suite_runs_is_checked(tmp_path: Path) -> None:
    """strace (bench/syscalls.py), redis-cli (the Redis cluster test) and openssl (the Redis TLS
    test) are checked too: without them the suite started and failed in the middle."""
    path = _path_without({"strace", "redis-cli", "openssl"}, tmp_path / "bin")
    line = _refused(PATH=path)
    assert line.startswith("make test: missing redis-cli, openssl, strace; install with: "), line
    assert "apt-get install -y --no-install-recommends redis-tools openssl strace " in line


def test_without_apt_the_line_names_the_debian_packages(tmp_path: Path) -> None:
    path = _path_without({"faketime", "apt-get"}, tmp_path / "bin")
    done = _setup(PATH=path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "make test: missing faketime; install the equivalent of the Debian package(s): faketime"
    ]


def test_redis_server_from_the_environment_counts(tmp_path: Path) -> None:
    """$FENCEDSTATE_REDIS_BIN is what tests/redis_server.py runs, as $FENCEDSTATE_ETCD_BIN is
    for etcd: a redis-server off PATH named there is not missing."""
    real = shutil.which("redis-server")
    assert real is not None
    path = _path_without({"redis-server"}, tmp_path / "bin")
    done = _setup(PATH=path, FENCEDSTATE_SETUP_NO_INSTALL="1", FENCEDSTATE_REDIS_BIN=real)
    assert done.returncode == 0, done.stderr


def test_a_python_without_venv_is_named(tmp_path: Path) -> None:
    """Debian's python3 without python3-venv cannot make .venv: named before anything runs."""
    fake = tmp_path / "python3"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$*" in *ensurepip*) echo "No module named ensurepip" >&2; exit 1;; esac\n'
        f'exec {sys.executable} "$@"\n'
    )
    fake.chmod(0o755)
    line = _refused(PY=str(fake))
    assert line.startswith("make test: missing Python venv; install with: "), line
    assert "apt-get install -y --no-install-recommends python3-venv " in line


def test_make_test_checks_the_system_before_it_makes_the_venv() -> None:
    """The check runs first (a rule's own prerequisites come before those other lines add, so
    `test: system-deps` on a line of its own ran after the venv and its install)."""
    done = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", "test"],  # dry run, as if the venv were stale
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "setup-system.sh" in out and "-m venv" in out
    assert out.index("setup-system.sh") < out.index("-m venv")
